"""Six judges, three proposers: the built-in package's three systems propose candidates (its
43-per-utterance pool), all six systems (those three and exp/full_pkg's three) score them.
Tuned on valid as tune-rescoring does (same grid), the chosen point then scored once on dev."""
import itertools, sys, time
import torch
from asr.data import read_manifest
from asr.evaluate import readable_batches
from asr.metrics import word_errors
from asr.rescoring import DEFAULT_LM_WEIGHTS, DEFAULT_WEIGHTS, DEFAULT_WORD_SCORES
from asr.rescoring_files import load_rescoring
from asr.rescoring_grid import CandidateTable
from asr.text import normalize_text

torch.set_num_threads(2)
SCALES = (0.0, 0.3, 0.45)
WEIGHTS = tuple(map(float, sys.argv[1].split(","))) if len(sys.argv) > 1 else DEFAULT_WEIGHTS  # e.g. 0,0.25,0.5,1,1.5


class ProposesNothing:
    def decode_nbest(self, log_probs, lengths):
        return [[] for _ in range(log_probs.shape[0])]


comb = load_rescoring("exp/s35/six.yaml")  # six systems, the built-in RNN LM share
comb.searches[3:] = [ProposesNothing()] * 3


def pooled(split):
    utts = read_manifest(f"data/so762/{split}.jsonl")
    out, refs = {s: [] for s in SCALES}, []
    for waves, batch_refs in readable_batches(comb, utts, 300.0, []):
        refs += [normalize_text(r) for r in batch_refs]
        with torch.inference_mode():
            for s, c in comb.candidates_at(waves, SCALES).items():
                out[s] += c
    return {s: CandidateTable(c, refs) for s, c in out.items()}, refs


t = time.time()
valid, _ = pooled("valid")
grid = [(w, lw, ws, s, valid[s].word_error_rate(w, lw, ws)) for s in SCALES
        for rest in itertools.product(WEIGHTS, repeat=5) for lw in DEFAULT_LM_WEIGHTS
        for ws in DEFAULT_WORD_SCORES for w in [(1.0, *rest)]]
best = min(grid, key=lambda g: (round(g[4], 9), sum(g[0]), g[1], abs(g[2]), g[3]))
three = min((g for g in grid if g[0][3:] == (0.25, 0.25, 0.25)), key=lambda g: round(g[4], 9))
print(f"valid: {len(grid)} points in {time.time() - t:.0f} s; best {100 * best[4]:.2f}% at {best[:4]}; "
      f"the extra judges all at 0.25: {100 * three[4]:.2f}%", flush=True)
dev, refs = pooled("test")
w, lw, ws, s, _ = best
print(f"dev at the valid choice: {100 * dev[s].word_error_rate(w, lw, ws):.2f}% ({len(refs)} utterances)")
# Paired with the built-in package's dev report (same manifest order), by speaker.
import json
import numpy as np
from asr.metrics import paired_bootstrap
from asr.evaluate import batches_by_duration
utts = read_manifest("data/so762/test.jsonl")
order = [utts[i].audio_filepath for batch in batches_by_duration(utts, 300.0) for i in batch]  # readable_batches'
by_path = {u["audio_filepath"]: u for u in json.load(open("exp/s33/rep_pkg_final/results.json"))["utterances"]}
base = [by_path[a] for a in order]
assert [normalize_text(u["reference"]) for u in base] == refs
chosen = dev[s].choices(w, lw, ws)
errors = dev[s].errors[np.arange(len(chosen)), chosen]
boot = paired_bootstrap([u["word_errors"] for u in base], errors, [u["words"] for u in base],
                        groups=[u["speaker"] for u in base])
print(f"against the built-in package: {100 * boot.difference:+.2f} points, 95% interval "
      f"[{100 * boot.low:+.2f}, {100 * boot.high:+.2f}] over {boot.groups} speakers; "
      f"better on {int((errors < [u['word_errors'] for u in base]).sum())}, worse on "
      f"{int((errors > [u['word_errors'] for u in base]).sum())}")
