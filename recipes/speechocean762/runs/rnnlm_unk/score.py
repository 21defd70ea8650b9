"""The package's n-best rescoring with another forward LSTM LM, on its pooled candidates
(../rnnlm_bwd/dump.py's): the LSTM's share chosen by perplexity on valid as `asr tune-rescoring`
chooses it, the package's grid (system weights x LM weight x word score) tuned on valid, then dev
scored with valid's choice. Usage: score.py RNNLM_DIR [dev]  (RNNLM_DIR "package": its own LSTM)."""
import itertools, sys
from asr.rescoring import Candidates, PieceTable, choose_rnnlm_lambda
from asr.rescoring_files import load_rescoring
from asr.rnnlm import load_rnnlm
import pickle

combined = load_rescoring("asr/pretrained/default/rescoring.yaml")
lm = combined.lm
if sys.argv[1] != "package":
    lm.rnnlm = load_rnnlm(sys.argv[1])


def load(path):
    d = pickle.load(open(path, "rb"))
    return d, sorted({t for texts, _, _ in d["rows"] for t in texts})


def candidates(d, scores):
    out = [Candidates(texts, ctc, [scores[t] for t in texts]) for texts, ctc, _ in d["rows"]]
    out += [Candidates([], [[] for _ in d["rows"][0][1]], []) for _ in d["silent"]]
    return out, list(d["refs"]) + list(d["silent"])


valid, vtexts = load("exp/s45/valid_cands.pkl")
lam, ppl = choose_rnnlm_lambda(lm, [r for r in valid["refs"] if r and r.strip()])
print(f"LSTM share {lam} (valid perplexity {ppl[lam]:.1f}; n-gram alone {ppl[0.0]:.1f}, LSTM alone {ppl[1.0]:.1f}; "
      f"{len(lm.rnnlm.words)} LSTM words)", flush=True)
c, r = candidates(valid, dict(zip(vtexts, lm.scores(vtexts, lam))))
table = PieceTable(c, r)
ws, lmw, wsc = (0, 0.25, 0.5, 1, 1.5), (0.5, 1.0, 2.0, 3.0, 4.0), (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
grid = [((1.0, *rest), l, s, table.word_error_rate((1.0, *rest), l, s))
        for rest in itertools.product(ws, repeat=3) for l in lmw for s in wsc]
w, l, s, wer = min(grid, key=lambda g: (round(g[3], 9), sum(g[0]), g[1], abs(g[2])))
print(f"valid {wer:.2%} at weights {w}, LM {l}, word score {s}", flush=True)
if len(sys.argv) > 2:
    dev, dtexts = load("exp/s45/dev_cands.pkl")
    c, r = candidates(dev, dict(zip(dtexts, lm.scores(dtexts, lam))))
    print(f"dev {PieceTable(c, r).word_error_rate(w, l, s):.2%} with valid's choice")
