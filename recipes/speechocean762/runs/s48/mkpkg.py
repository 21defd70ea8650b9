"""Experiment: a searchable phone model dir: weights from a run, the package system's LM settings,
a lexicon of the package lexicon's words spelled by the run's tokenizer (optionally with variants)."""
import shutil, sys, yaml
from pathlib import Path
from asr.tokenizers import load_tokenizer
run, ref, dst = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
variants = sys.argv[4] if len(sys.argv) > 4 else None
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(run, dst)
tok = load_tokenizer(dst / "tokenizer.json")
extra = {}
if variants:
    for line in open(variants):
        f = line.split(); extra.setdefault(f[0], []).append(tuple(f[1:-1]))
lines = []
for line in open(ref / "lexicon.txt"):
    w = line.split()[0]
    prons = [tok.pronunciations[w]] if w in tok.pronunciations else []
    prons += [p for p in extra.get(w, []) if p not in prons]
    lines += [f"{w} {' '.join(p)} |" for p in dict.fromkeys(prons)]
(dst / "lexicon.txt").write_text("\n".join(lines) + "\n")
dec = yaml.safe_load((ref / "decoding.yaml").read_text())
dec["lm"] = str((ref / dec["lm"]).resolve())
dec["lexicon"] = "lexicon.txt"
(dst / "decoding.yaml").write_text(yaml.safe_dump(dec))
print(len(lines), "lexicon lines")
