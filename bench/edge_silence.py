"""How much extra quiet at a clip's ends costs: WER of valid clips as they are, with PAD seconds
of digital silence added at each end, and with PAD seconds of their own noise floor (white noise
at the RMS of their first 0.1 s). Each clip is run as evaluate runs it (its speech span).

    python bench/edge_silence.py data/so762/valid.jsonl [--pad 0.4] [--decoder greedy]

Why the segmenter keeps only ``pause_margin_seconds`` of a pause it cuts at (README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asr  # noqa: E402
from asr.data import read_manifest  # noqa: E402
from asr.text import normalize_text  # noqa: E402


def padded(clips, pad: int, rng, fill: str) -> list[np.ndarray]:
    out = []
    for c in clips:
        level = 0.0 if fill == "zeros" else float(np.sqrt(np.mean(c[:1600].astype(np.float64) ** 2)))
        ends = [(level * rng.standard_normal(pad)).astype(np.float32) for _ in range(2)]
        out.append(np.concatenate([ends[0], c, ends[1]]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("--pad", type=float, default=0.4, help="seconds added at each end")
    p.add_argument("--decoder", default="auto", help="auto: the built-in package (n-best rescoring)")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = read_manifest(args.manifest)
    model = asr.load_model(device="cpu", workers=1, decoder=args.decoder)
    references = [normalize_text(u.text) for u in rows]
    clips = [sf.read(u.audio_filepath, dtype="float32")[0] for u in rows]
    rng, pad = np.random.default_rng(0), int(args.pad * model.sample_rate)
    row = {"decoder": args.decoder, "pad_seconds": args.pad, "clips": len(rows)}
    for name, waves in (("as they are", clips), ("digital silence", padded(clips, pad, rng, "zeros")),
                        ("own noise floor", padded(clips, pad, rng, "floor"))):
        spans = [model.segmenter.speech_span(w) for w in waves]
        waves = [torch.from_numpy(np.ascontiguousarray(w[lo:hi])) for w, (lo, hi) in zip(waves, spans)]
        texts = [r.text for i in range(0, len(waves), 16) for r in model.transcribe_waveforms(waves[i: i + 16])]
        row[name] = round(100 * jiwer.wer(references, [normalize_text(t) for t in texts]), 2)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
