"""Session 49: frame-level ensemble of the built-in package's three phone systems (one tokenizer, one
frame rate): their log-probabilities averaged (mean of logs, or log of the mean) and searched with
system2's beam search, LM and settings, against each system alone through the same search.

    python recipes/speechocean762/runs/s49/avg.py [valid]
"""
import json
import sys
import time

import jiwer
import torch

from asr.audio import load_audio
from asr.transcribe import load_model

torch.set_num_threads(1)
torch.set_flush_denormal(True)
split = sys.argv[1] if len(sys.argv) > 1 else "valid"
utts = [json.loads(l) for l in open(f"data/so762/{split}.jsonl")]
P = "asr/pretrained/default/"
ts = [load_model(P + s) for s in ("system2", "system3", "system4")]
refs, hyps = [u["text"].lower() for u in utts], {k: [] for k in ("s2", "s3", "s4", "mean_log", "log_mean")}
t0 = time.time()
for i in range(0, len(utts), 16):
    waves = [load_audio(u["audio_filepath"], 16000) for u in utts[i:i + 16]]
    outs = [t.log_probs(waves) for t in ts]
    n = outs[0][1]
    assert all(torch.equal(o[1], n) for o in outs)
    lps = torch.stack([o[0] for o in outs])
    for k, lp in (("s2", lps[0]), ("s3", lps[1]), ("s4", lps[2]), ("mean_log", lps.mean(0)),
                  ("log_mean", (lps.logsumexp(0) - torch.log(torch.tensor(3.0))))):
        lp = lp.log_softmax(-1)
        hyps[k] += [h.text for h in ts[0].decoder.decode(lp, n)]
    print(i, time.time() - t0, flush=True)
for k, h in hyps.items():
    print(k, "WER %.2f%%" % (100 * jiwer.wer(refs, h)), "CER %.2f%%" % (100 * jiwer.cer(refs, h)))
