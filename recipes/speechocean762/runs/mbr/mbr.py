"""Minimum Bayes risk choice among the built-in package's pooled n-best candidates (Stolcke et al.
1997; Goel & Byrne 2000): instead of the candidate with the best total score (MAP), the one with
the fewest expected word errors against the others, each weighted by its posterior, softmax of
the package's total score times a scale. The scale is chosen on valid; dev is scored with it.
Reads ../rnnlm_bwd/dump.py's candidates (exp/s45/{valid,dev}_cands.pkl). Usage: mbr.py [dev]"""
import math, pickle, sys
import numpy as np
from rapidfuzz.distance import Levenshtein
from asr.metrics import word_errors
from asr.text import normalize_text


def totals(texts, ctc, lm, o):
    t = np.array([sum(w * s[i] for w, s in zip(o.weights, ctc) if w) + o.lm_weight * lm[i]
                  + o.word_score * len(texts[i].split()) for i in range(len(texts))])
    spellable = np.array([all(s[i] > -math.inf for s in ctc) for i in range(len(texts))])
    return np.where(spellable, t, -np.inf) if spellable.any() else t


def choose(texts, scores, scale):
    if scale is None or len(texts) < 2:  # MAP, as Candidates.best (ties: the first)
        return texts[int(np.argmax(scores))]
    keep = np.isfinite(scores)
    idx = np.flatnonzero(keep)
    z = scale * math.log(10) * (scores[idx] - scores[idx].max())  # the scores are log10-scaled sums
    p = np.exp(z) / np.exp(z).sum()
    words = [normalize_text(texts[i]).split() for i in idx]
    risk = [sum(p[k] * Levenshtein.distance(words[j], words[k]) for k in range(len(idx)) if p[k] > 1e-6)
            for j in range(len(idx))]
    return texts[idx[int(np.argmin(risk))]]


def wer(path, scale):
    d = pickle.load(open(path, "rb"))
    o = d["options"]
    refs, hyps = [], []
    for (texts, ctc, lm), ref in zip(d["rows"], d["refs"]):
        hyp = normalize_text(choose(texts, totals(texts, ctc, lm, o), scale)) if texts else ""
        if ref is None:  # a piece continuing the utterance before
            hyps[-1] = (hyps[-1] + " " + hyp).strip()
        else:
            refs.append(ref)
            hyps.append(hyp)
    refs += list(d["silent"])
    hyps += [""] * len(d["silent"])
    return word_errors(refs, hyps).rate


scales = [None, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]
valid = {s: wer("exp/s45/valid_cands.pkl", s) for s in scales}
for s, w in valid.items():
    print(f"valid scale {s}: {w:.2%}", flush=True)
if len(sys.argv) > 1:
    best = min(scales[1:], key=lambda s: (round(valid[s], 9), -s))  # ties: the sharper (nearer MAP)
    print(f"dev MAP {wer('exp/s45/dev_cands.pkl', None):.2%}, MBR at valid's scale {best}: "
          f"{wer('exp/s45/dev_cands.pkl', best):.2%}")
