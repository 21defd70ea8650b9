"""What the segmenter's steady-noise rule (``SegmenterOptions.steady_db``: a segment whose loudest
100 ms, pre-emphasized, is under 2 dB above its quietest holds no speech) catches and what it spares:

1. the span (dB) of coloured noise (white, pink, brown) of 0.5, 3 and 20 s, and what the built-in
   package wrote for 3 s of white noise at -60, -40 and -20 dBFS with the rule off and on;
2. the smallest span over each MANIFEST's clips, and how many the rule flags (none should be);
3. the first CLIPS clips of the first manifest under white noise at 0, 3, 5 and 10 dB SNR: how many
   the rule flags, and the built-in model's greedy WER on those (what flagging them costs).

    python bench/steady_noise.py data/so762/valid.jsonl data/so762/train.jsonl data/so762/test.jsonl [--clips 60]

Prints JSON lines (README.md, "Long audio").
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
from asr.manifest import read_manifest  # noqa: E402
from asr.noise import coloured_noise  # noqa: E402
from asr.segmenter import Segmenter, SegmenterOptions  # noqa: E402
from asr.text import normalize_text  # noqa: E402

RATE = 16000


def mono(path: str) -> np.ndarray:
    x, rate = sf.read(path, dtype="float32")
    assert rate == RATE, f"{path}: {rate} Hz"
    return x if x.ndim == 1 else x.mean(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifests", nargs="+")
    p.add_argument("--clips", type=int, default=60)
    args = p.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    span_db = Segmenter(RATE).energy_span_db  # is_steady's measure
    for colour, name in ((0.0, "white"), (1.0, "pink"), (2.0, "brown")):
        for seconds in (0.5, 3.0, 20.0):
            noise = coloured_noise(20, int(seconds * RATE), torch.full((20,), colour), RATE).numpy()
            print(json.dumps({"noise": name, "seconds": seconds, "largest_span_db": round(max(map(span_db, noise)), 2)}))
    models = {rule: asr.load_model(decoder="auto") for rule in ("off", "on")}
    models["off"].segmenter = Segmenter(RATE, SegmenterOptions(steady_db=0.0), models["off"].segmenter.align)
    for dbfs in (-60, -40, -20):
        hiss = (10 ** (dbfs / 20) * rng.standard_normal(3 * RATE)).astype(np.float32)
        print(json.dumps({"white_noise_dbfs": dbfs, **{f"text_rule_{rule}": m.transcribe(hiss).text
                                                         for rule, m in models.items()}}))
    segmenter = Segmenter(RATE)
    for manifest in args.manifests:
        clips = [mono(u.audio_filepath) for u in read_manifest(manifest)]
        print(json.dumps({"manifest": manifest, "clips": len(clips), "flagged": sum(map(segmenter.is_steady, clips)),
                          "smallest_span_db": round(min(map(span_db, clips)), 2)}))
    utterances = read_manifest(args.manifests[0])[: args.clips]
    greedy = asr.load_model(decoder="greedy")
    greedy.segmenter = Segmenter(RATE, SegmenterOptions(steady_db=0.0), greedy.segmenter.align)  # text of all
    for snr in (0, 3, 5, 10):
        refs, hyps, flagged = [], [], []
        for u in utterances:
            x = mono(u.audio_filepath)
            noisy = (x + rng.standard_normal(x.size) * x.std() * 10 ** (-snr / 20)).astype(np.float32)
            refs.append(normalize_text(u.text))
            hyps.append(greedy.transcribe(noisy).text)
            flagged.append(segmenter.is_steady(noisy))
        picked = [i for i, f in enumerate(flagged) if f]
        print(json.dumps({"snr_db": snr, "clips": len(refs), "greedy_wer": round(jiwer.wer(refs, hyps), 4),
                          "flagged": len(picked), "greedy_wer_of_flagged": round(jiwer.wer(
                              [refs[i] for i in picked], [hyps[i] for i in picked]), 4) if picked else None}))


if __name__ == "__main__":
    main()
