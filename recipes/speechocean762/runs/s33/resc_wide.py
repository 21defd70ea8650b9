"""Rescoring grid past the defaults' edge (lm_weight 4, the largest default, was chosen): valid only."""
from asr.data import read_manifest
from asr.rescoring import load_rescoring, tune
from dataclasses import replace

combined = load_rescoring("asr/pretrained/default/rescoring.yaml")
combined.options = replace(combined.options, rnnlm_lambda=0.0)
r = tune(combined, read_manifest("data/so762/valid.jsonl"), weights=(0.25, 0.5, 1.0),
         lm_weights=(2.0, 3.0, 4.0, 5.0, 6.0, 8.0), word_scores=(-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0),
         prior_scales=(0.3, 0.45, 0.6))
print("best", r.options, r.wer)
grid = sorted(r.grid, key=lambda g: g[4])
for g in grid[:15]:
    print(g)
for lw in (2.0, 3.0, 4.0, 5.0, 6.0, 8.0):
    print(lw, min(g[4] for g in r.grid if g[1] == lw))
