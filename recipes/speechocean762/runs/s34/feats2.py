"""Offline: a sentence-level agreement feature (how many systems proposed the candidate; or the sum
of 1/(1+rank) over systems) added to the package's rescoring score. Valid decides."""
import itertools, math, pickle, sys
import jiwer
D = pickle.load(open("exp/s34/cands_valid_test.pkl", "rb"))


def wer(refs, hyps):
    o = jiwer.process_words(refs, hyps)
    return (o.substitutions + o.deletions + o.insertions) / sum(len(r.split()) for r in refs)


def feats(r, kind):
    out = []
    for t in r["texts"]:
        if kind == "count":
            out.append(sum(t in nb for nb in r["sys_nbest"]))
        else:
            out.append(sum(1 / (1 + nb.index(t)) for nb in r["sys_nbest"] if t in nb))
    return out


def choose(rows, w, lmw, ws, a, kind):
    res = []
    for r in rows:
        ctc = r["ctc"][0.0]; f = r.setdefault(kind, feats(r, kind))
        ok = [i for i in range(len(r["texts"])) if all(s[i] > -math.inf for s in ctc)] or range(len(r["texts"]))
        res.append(r["texts"][max(ok, key=lambda i: sum(wi * s[i] for wi, s in zip(w, ctc)) + lmw * r["lm"][i]
                                  + ws * len(r["texts"][i].split()) + a * f[i])])
    return res


V, T = D["valid"], D["test"]
W = (0.25, 0.5, 1.0, 1.5)
for kind, As in (("count", (0, 1, 2, 4, 8)), ("rank", (0, 1, 2, 4, 8))):
    refs = [r["ref"] for r in V]
    g = sorted(((wer(refs, choose(V, (1, w2, w3), lmw, ws, a, kind)), (1, w2, w3), lmw, ws, a)
                for w2, w3, lmw, ws, a in itertools.product(W, W, (0.5, 1, 2, 3, 4), (-2, -1, 0, 1, 2, 3), As)),
               key=lambda x: (round(x[0], 9), x[4], sum(x[1]), x[2], abs(x[3])))
    best = g[0]
    print(kind, f"valid {best[0]:.4f}", best[1:], "| at a=0:", f"{min(x[0] for x in g if x[4] == 0):.4f}", flush=True)
    if "--dev" in sys.argv:
        print("  dev", f"{wer([r['ref'] for r in T], choose(T, *best[1:], kind)):.4f}")
