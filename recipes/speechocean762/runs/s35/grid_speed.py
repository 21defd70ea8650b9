"""The rescoring grid's cost per point, before (Candidates.best + word_errors per point) and after
(CandidateTable), on the built-in package's pooled valid candidates (exp/s34/cands_valid_test.pkl)."""
import itertools, pickle, time
from dataclasses import replace
from asr.metrics import word_errors
from asr.rescoring import Candidates, RescoringOptions, DEFAULT_WEIGHTS, DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES
from asr.rescoring_grid import CandidateTable

rows = pickle.load(open("exp/s34/cands_valid_test.pkl", "rb"))["valid"]
cands = [Candidates(r["texts"], ctc=r["ctc"][0.0], lm=r["lm"]) for r in rows]
refs = [r["ref"] for r in rows]
points = [((1.0, *rest), lw, ws) for rest, lw, ws in itertools.product(
    itertools.product(DEFAULT_WEIGHTS, repeat=2), DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES)]
t = time.perf_counter()
old = [word_errors(refs, [c.texts[c.best(RescoringOptions(w, lw, ws))] for c in cands]).rate for w, lw, ws in points]
t_old = time.perf_counter() - t
t = time.perf_counter()
table = CandidateTable(cands, refs)
t_build = time.perf_counter() - t
new = [table.word_error_rate(w, lw, ws) for w, lw, ws in points]
t_new = time.perf_counter() - t
print(f"{len(points)} points, {len(cands)} utterances: before {t_old:.2f} s ({1e3 * t_old / len(points):.2f} ms/point), "
      f"after {t_new:.2f} s (table {t_build:.2f} s, {1e3 * (t_new - t_build) / len(points):.3f} ms/point); same WERs: {old == new}")
