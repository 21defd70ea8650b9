"""Long recordings made of valid clips: WER when the segmenter cuts only at the quietest point
(the old rule: pause_seconds=0, min_seconds=5), at pauses too keeping the whole pause (cut in its
middle), keeping 0.2 s of each (pause_margin_seconds), and, the defaults, also at pauses that are
quiet by the noise floor (noise_floor_db) rather than 40 dB below the speech.

    python bench/segment_long_files.py data/so762/valid.jsonl exp/long_files [--package]

Builds six files from the manifest's clips in order (seeded; digital silence between clips):
12 min of 120 clips 0.5-1.5 s apart, the same back to back, 60 clips around a 90 s silence (Ogg),
60 clips under white noise at -40 dBFS, 50 clips 0.4-1.2 s apart, and 60 clips under noise at
-50 dBFS. Each is transcribed whole, greedy; --package also runs the built-in package (n-best
rescoring) on the 50-clip file (and on its clips one by one) and on the two noisy files. The
reference is the clips' transcripts joined. ``--files`` transcribes only some of the six (all are
still built, so each is the same), ``--package-only`` leaves out the greedy runs, and ``--rule
'LABEL:KEY=VALUE,...'`` (repeated) replaces the four rules with segmenter options of one's own
(``SegmenterOptions`` fields; ``'default:'`` for the defaults), e.g. pauses of 0.4 s:

    python bench/segment_long_files.py data/so762/valid.jsonl /tmp/long_files --package-only \
        --files fifty.wav --rule default: --rule 'pause 0.4 s:pause_seconds=0.4'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asr  # noqa: E402
from asr.data import read_manifest  # noqa: E402
from asr.segmenter import Segmenter, SegmenterOptions  # noqa: E402
from asr.text import normalize_text  # noqa: E402

RATE = 16000
RULES = {"quietest point only": SegmenterOptions(pause_seconds=0.0, min_seconds=5.0),
         "at pauses, cut mid-pause": SegmenterOptions(pause_margin_seconds=3600.0, noise_floor_db=0.0),
         "at pauses, 0.2 s of each kept": SegmenterOptions(noise_floor_db=0.0),
         "also pauses at the noise floor": SegmenterOptions()}


def build(out: Path, utterances, name, gap, rng, long_silence=None, noise_db=None, fmt="WAV", subtype=None) -> dict:
    parts = []
    for i, u in enumerate(utterances):
        x, rate = sf.read(u.audio_filepath, dtype="float32")
        assert rate == RATE and x.ndim == 1, u.audio_filepath
        seconds = long_silence if long_silence and i == len(utterances) // 2 else gap()
        parts += [x, np.zeros(int(seconds * RATE), np.float32)]
    y = np.concatenate(parts)
    if noise_db is not None:
        y = y + 10 ** (noise_db / 20) * rng.standard_normal(y.size).astype(np.float32)
    with sf.SoundFile(str(out / name), "w", RATE, 1, format=fmt, subtype=subtype) as f:
        for i in range(0, y.size, 10 * RATE):  # in parts: one whole-array Ogg write crashed libsndfile
            f.write(np.clip(y[i: i + 10 * RATE], -1, 1))
    return {"file": name, "minutes": y.size / RATE / 60, "clips": len(utterances),
            "reference": " ".join(normalize_text(u.text) for u in utterances)}


def rule(text: str) -> tuple[str, SegmenterOptions]:
    """'LABEL:KEY=VALUE,...' -> (LABEL, SegmenterOptions with those fields)."""
    label, _, settings = text.partition(":")
    pairs = [item.split("=", 1) for item in settings.split(",") if item.strip()]
    return label, SegmenterOptions(**{k.strip(): float(v) for k, v in pairs})


def with_segmenter(model, options: SegmenterOptions):
    for system in [model, *getattr(model, "systems", [])]:
        if hasattr(system, "segmenter"):
            system.segmenter = Segmenter.on_frames(system.sample_rate, system.model.frame_shift, options)
    return model


def wer(reference: str, hypothesis: str) -> float:
    return round(100 * jiwer.wer(reference, normalize_text(hypothesis)), 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("out", type=Path)
    p.add_argument("--package", action="store_true", help="also the built-in package on the 50-clip file")
    p.add_argument("--package-only", action="store_true", help="the built-in package's runs alone (no greedy)")
    p.add_argument("--files", nargs="+", help="transcribe only these files (by name; all are built)")
    p.add_argument("--rule", action="append", type=rule, help="'LABEL:KEY=VALUE,...' instead of the four rules")
    args = p.parse_args()
    rules = dict(args.rule) if args.rule else RULES
    args.out.mkdir(parents=True, exist_ok=True)
    rows, rng = read_manifest(args.manifest), np.random.default_rng(41)
    files = [build(args.out, rows[:120], "gaps.wav", lambda: rng.uniform(0.5, 1.5), rng),
             build(args.out, rows[:120], "back_to_back.flac", lambda: 0.0, rng, fmt="FLAC"),
             build(args.out, rows[:60], "long_silence.ogg", lambda: rng.uniform(0.3, 1.0), rng, long_silence=90.0,
                   fmt="OGG", subtype="VORBIS"),
             build(args.out, rows[:60], "noisy.wav", lambda: rng.uniform(0.5, 1.5), rng, noise_db=-40),
             build(args.out, rows[60:110], "fifty.wav", lambda: rng.uniform(0.4, 1.2), rng),
             build(args.out, rows[:60], "noisy50.wav", lambda: rng.uniform(0.5, 1.5), rng, noise_db=-50)]
    runs = ([] if args.package_only else [("greedy", f) for f in files]) \
        + ([("package", files[i]) for i in (4, 3, 5)] if args.package or args.package_only else [])
    runs = [(decoder, f) for decoder, f in runs if not args.files or f["file"] in args.files]
    for decoder, f in runs:
        row = {"decoder": decoder, **{k: v for k, v in f.items() if k != "reference"}}
        for name, options in rules.items():
            model = asr.load_model(device="cpu", workers=1, **({"decoder": "greedy"} if decoder == "greedy" else {}))
            row[name] = wer(f["reference"], with_segmenter(model, options).transcribe(str(args.out / f["file"])).text)
        if decoder == "package" and f["file"] == "fifty.wav":
            model = asr.load_model(device="cpu", workers=1)
            clips = [model.transcribe(u.audio_filepath).text for u in rows[60:110]]
            row["each clip alone"] = wer(f["reference"], " ".join(clips))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
