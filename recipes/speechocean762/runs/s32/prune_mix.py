import sys, time
from asr.arpa import ArpaModel, write_arpa
from asr.lm_prune import prune
t = time.time(); m = ArpaModel('exp/lmx/mix3.arpa'); print('load', round(time.time()-t), flush=True)
for th in sys.argv[1:]:
    t = time.time(); p = prune(m, float(th)); t1 = time.time() - t
    write_arpa(p, f'exp/s32/mix3_p{th}.arpa')
    print(th, [len(x) for x in p.ngrams], f'prune {t1:.0f}s, total {time.time()-t:.0f}s', flush=True)
