"""Forward + backward LSTM LM rescoring on dump.py's candidates: tune on valid, score dev.

A candidate's LM score is (1 - beta) log P_fwd + beta log P_bwd, each word by word the LSTM's
probability interpolated with the n-gram's (the forward share is the package's, the backward one
chosen by perplexity on valid as asr tune-rescoring chooses the forward one; LAM_B=1: the backward
LSTM alone); the grid over system weights, LM weight and word score is the package's."""
import itertools, os, pickle, sys, math
import numpy as np
from asr.rescoring import Candidates, PieceTable
from asr.rescoring_files import load_rescoring
from asr.rnnlm import load_rnnlm, interpolation_weight, _mixed

bwd_dir = sys.argv[1]
LAM_B = float(os.environ['LAM_B']) if 'LAM_B' in os.environ else None
combined = load_rescoring("asr/pretrained/default/rescoring.yaml")
lm, bwd = combined.lm, load_rnnlm(bwd_dir)
lam_f = combined.options.rnnlm_lambda


def arrays(texts):
    sents = [t.split() for t in texts]
    ngram = [lm.ngram_word_log_probs(t) for t in texts]
    fwd = lm.rnnlm.word_log_probs(sents)
    bw = bwd.word_log_probs([list(reversed(s)) for s in sents])
    out = []
    for s, n, f, b in zip(sents, ngram, fwd, bw):
        b = np.concatenate([b[:-1][::-1], b[-1:]])  # per word of s, then the sentence boundary
        f, b = f.copy(), b.copy()
        uf = np.array([not lm.rnnlm.known(w) for w in s] + [False]); f[uf] = n[uf]
        ub = np.array([not bwd.known(w) for w in s] + [False]); b[ub] = n[ub]
        out.append((n, f, b))
    return out


def choose_lam_b(refs):
    texts = [r for r in refs if r and r.strip()]
    a = arrays(texts)
    known = [np.array([bwd.known(w) and lm.words.get_index(w) != lm.unknown for w in t.split()] + [True]) for t in texts]
    return interpolation_weight([x[0] for x in a], [x[2] for x in a], known)


def load(path):
    d = pickle.load(open(path, "rb"))
    texts = sorted({t for texts, _, _ in d["rows"] for t in texts})
    table = dict(zip(texts, arrays(texts)))
    return d, table


def candidates(d, table, beta, lam_b):
    out = []
    for texts, ctc, _ in d["rows"]:
        lms = []
        for t in texts:
            n, f, b = table[t]
            lms.append(float(((1 - beta) * _mixed(n, f, lam_f).sum() + beta * _mixed(n, b, LAM_B if LAM_B is not None else lam_b).sum()) / math.log(10)))
        out.append(Candidates(texts, ctc, lms))
    for _ in d["silent"]:
        out.append(Candidates([], [[] for _ in ctc], []))
    return out, list(d["refs"]) + list(d["silent"])


valid, vt = load("exp/s45/valid_cands.pkl")
vrefs = [r for r in valid["refs"] if r is not None]
lam_b, ppl = choose_lam_b(vrefs)
print("backward share", lam_b, "ppl", ppl[lam_b], "alone", ppl[1.0], "ngram", ppl[0.0])
o = combined.options
# sanity: the package's own weights at beta 0
c, r = candidates(valid, vt, 0.0, lam_b)
print("valid, package weights, beta 0:", PieceTable(c, r).word_error_rate(o.weights, o.lm_weight, o.word_score))
ws = (0, 0.25, 0.5, 1, 1.5); lmw = (0.5, 1.0, 2.0, 3.0, 4.0); wsc = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
results = {}
for beta in (0.0, 0.25, 0.5, 0.75):
    c, r = candidates(valid, vt, beta, lam_b)
    pt = PieceTable(c, r)
    grid = [((1.0, *rest), l, s, pt.word_error_rate((1.0, *rest), l, s)) for rest in itertools.product(ws, repeat=3) for l in lmw for s in wsc]
    best = min(grid, key=lambda g: (round(g[3], 9), sum(g[0]), g[1], abs(g[2])))
    results[beta] = best
    print("valid beta", beta, "best", best, flush=True)
if len(sys.argv) > 2:
    dev, dt = load("exp/s45/dev_cands.pkl")
    for beta, (w, l, s, _) in results.items():
        c, r = candidates(dev, dt, beta, lam_b)
        print("dev beta", beta, "with valid's", w, l, s, "WER", PieceTable(c, r).word_error_rate(w, l, s))
    c, r = candidates(dev, dt, 0.0, lam_b)
    print("dev package weights beta 0:", PieceTable(c, r).word_error_rate(o.weights, o.lm_weight, o.word_score))
