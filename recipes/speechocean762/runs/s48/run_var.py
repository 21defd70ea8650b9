"""Experiment: rescoring's phone CTC score as the max over pronunciation variants (coordinate ascent)."""
import os, sys
import torch, torch.nn.functional as F
import asr.rescoring as R
from asr.cli import main

VAR = {}
for line in open(os.environ["VARLEX"]):
    f = line.split()
    VAR.setdefault(f[0], []).append(tuple(f[1:-1]))
orig = R.ctc_log_likelihoods


def _ids(tok, prons):
    ids = []
    for i, p in enumerate(prons):
        if i: ids.append(tok.word_sep_id)
        ids += [tok._index[x] for x in p]
    return ids


def _score(lp, tok, seqs):
    T = lp.shape[0]
    targets = [_ids(tok, s) for s in seqs]
    lens = torch.tensor([len(t) for t in targets])
    flat = torch.tensor([i for t in targets for i in t])
    loss = F.ctc_loss(lp[:, None, :].expand(T, len(seqs), lp.shape[1]), flat, torch.full((len(seqs),), T), lens,
                      blank=tok.blank_id, reduction="none")
    return [-float(x) for x in loss]


def patched(log_probs, tokenizer, texts):
    if getattr(tokenizer, "kind", "") != "phone":
        return orig(log_probs, tokenizer, texts)
    lp = log_probs.detach().float().cpu()
    out = []
    for text in texts:
        words = text.split()
        if not words or any(w not in VAR and w not in tokenizer.pronunciations for w in words):
            out.append(orig(lp, tokenizer, [text])[0]); continue
        cur = [tokenizer.pronunciations.get(w) or VAR[w][0] for w in words]
        best = _score(lp, tokenizer, [cur])[0]
        for i, w in enumerate(words):
            alts = [v for v in VAR.get(w, []) if v != cur[i]]
            if not alts: continue
            seqs = [cur[:i] + [a] + cur[i + 1:] for a in alts]
            sc = _score(lp, tokenizer, seqs)
            j = max(range(len(sc)), key=sc.__getitem__)
            if sc[j] > best:
                best, cur = sc[j], seqs[j]
        out.append(best)
    return out


R.ctc_log_likelihoods = patched
sys.exit(main(sys.argv[1:]))
