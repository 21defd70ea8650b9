"""Dump the built-in package's pooled rescoring candidates (valid and dev) with CTC scores at
several blank prior scales (token prior scale fixed at the package's), for offline feature trials."""
import pickle, sys, torch
import asr.rescoring as R
from asr.data import read_manifest
from asr.evaluate import readable_batches
from asr.text import normalize_text

torch.set_num_threads(1)
P = "asr/pretrained/default"
comb = R.load_rescoring(f"{P}/rescoring.yaml")
scale = comb.options.prior_scale
blank_scales = (0.0, 0.25, 0.5, 1.0)
full = [None if o is None else torch.tensor(R.load_log_priors(t.loaded.path, len(t.tokenizer)))
        for t, o in zip(comb.systems, comb.prior_offsets)]
out = {}
for split in sys.argv[1:]:
    utts = read_manifest(f"data/so762/{split}.jsonl")
    rows = []
    for waves, refs in readable_batches(comb, utts, 300.0, []):
        with torch.inference_mode():
            outputs = [t.log_probs(waves) for t in comb.systems]
            nbests = [s.decode_nbest(*o) for s, o in zip(comb.searches, outputs)]
            texts = [list(dict.fromkeys(h.text for nb in nbests for h in nb[b][:16])) for b in range(len(waves))]
            lm = iter(comb.lm.scores([x for t in texts for x in t], comb.options.rnnlm_lambda))
            lms = [[next(lm) for _ in t] for t in texts]
            ctc = {}
            for bs in blank_scales:
                scored = []
                for i, (t, (lp, n)) in enumerate(zip(comb.systems, outputs)):
                    off = scale * comb.prior_offsets[i]
                    off[t.tokenizer.blank_id] = bs * full[i][t.tokenizer.blank_id]
                    scored.append((lp - off, n))
                ctc[bs] = [[R.ctc_log_likelihoods(lp[b, : int(n[b])], t.tokenizer, texts[b])
                            for t, (lp, n) in zip(comb.systems, scored)] for b in range(len(waves))]
            firsts = [[h.text for h in nb[b][:16]] for nb in nbests for b in [None]] if False else None
            for b in range(len(waves)):
                rows.append({"ref": normalize_text(refs[b]), "texts": texts[b], "lm": lms[b],
                             "ctc": {bs: ctc[bs][b] for bs in blank_scales},
                             "sys_nbest": [[h.text for h in nb[b][:16]] for nb in nbests]})
        print(split, len(rows), flush=True)
    out[split] = rows
pickle.dump(out, open(f"exp/s34/cands_{'_'.join(sys.argv[1:])}.pkl", "wb"))
