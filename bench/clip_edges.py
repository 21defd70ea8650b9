"""How much quiet a corpus's clips have before and after their speech: per clip, the 25 ms frames
at each end that are ``quiet_db`` (40 dB) below the clip's loudest frame, by the segmenter's own
rule (``asr.segmenter.loud_frames``, by which ``Segmenter.speech_span`` finds a segment's speech,
with ``SegmenterOptions``' defaults); the edges count whole frames, a partial last frame left out.

    python bench/clip_edges.py data/so762/train.jsonl data/so762/valid.jsonl \
        data/so762/test.jsonl

Prints a JSON line per manifest: the median quiet before and after the speech over all clips and
over every third clip (rows[::3]), 99th percentiles of the ends, the share of ends and of clips
(both ends) under 0.62 s, the longest end, and how many clips have an end over 0.7 s. Why the
segmenter cuts a segment's quiet edges longer than 1 s to 0.5 s, and keeps 0.2 s of a pause it cuts
at (README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.manifest import read_manifest  # noqa: E402
from asr.segmenter import SegmenterOptions, frame_energy, loud_frames  # noqa: E402


def quiet_ends(samples: np.ndarray, rate: int, opts: SegmenterOptions) -> tuple[float, float]:
    """Seconds of whole quiet frames before the first and after the last loud one."""
    energy = frame_energy(samples, opts.frame_samples(rate))
    loud = loud_frames(energy, opts.quiet_db)
    if not loud.size:
        return 0.0, 0.0
    return int(loud[0]) * opts.frame_seconds, (energy.size - 1 - int(loud[-1])) * opts.frame_seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifests", nargs="+")
    p.add_argument("--under", type=float, default=0.62, help="share of clips with both ends under this")
    p.add_argument("--over", type=float, default=0.7, help="count clips with an end over this")
    args = p.parse_args()
    opts = SegmenterOptions()
    for manifest in args.manifests:
        ends = []
        for u in read_manifest(manifest):
            x, rate = sf.read(u.audio_filepath, dtype="float32", always_2d=True)
            ends.append(quiet_ends(x.mean(axis=1), rate, opts))
        ends = np.array(ends)
        longer = ends.max(axis=1)
        r3 = lambda v: round(float(v), 3)  # noqa: E731
        row = {"manifest": manifest, "clips": len(ends), "quiet_db": opts.quiet_db,
               "median before, after": [r3(np.median(ends[:, 0])), r3(np.median(ends[:, 1]))],
               "every third clip: median before, after": [r3(np.median(ends[::3, 0])), r3(np.median(ends[::3, 1]))],
               "p99 of ends (both pooled)": r3(np.percentile(ends, 99)),
               "p99 before, after": [r3(np.percentile(ends[:, 0], 99)), r3(np.percentile(ends[:, 1], 99))],
               f"share of ends under {args.under:g} s": round(float(np.mean(ends < args.under)), 4),
               f"share of clips with both ends under {args.under:g} s": round(float(np.mean(longer < args.under)), 4),
               "longest end": r3(longer.max()),
               f"clips with an end over {args.over:g} s": int(np.sum(longer > args.over))}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
