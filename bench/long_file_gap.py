"""Where a long file's WER gap lies: the manifest's clips (default: valid rows 60-109, as
segment_long_files.py's fifty.wav) joined with 0.4-1.2 s of digital silence (seeded), transcribed
by the built-in package as the segmenter cuts it, and each clip alone. Segments and the clips they
overlap form connected groups: a clip decoded as one segment, clips joined into one, a clip cut in
several. Prints each group kind's errors both ways, and the joined and cut groups' texts.

    OMP_NUM_THREADS=1 python bench/long_file_gap.py data/so762/valid.jsonl /tmp/long_file_gap
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
from asr.text import normalize_text  # noqa: E402

RATE = 16000


def joined(utterances, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clips one after another with U(0.4, 1.2) s of zeros after each, and each clip's span in seconds."""
    rng, parts, spans, t = np.random.default_rng(seed), [], [], 0
    for u in utterances:
        x, rate = sf.read(u.audio_filepath, dtype="float32")
        assert rate == RATE and x.ndim == 1, u.audio_filepath
        gap = int(rng.uniform(0.4, 1.2) * RATE)
        spans.append((t / RATE, (t + x.size) / RATE))
        parts += [x, np.zeros(gap, np.float32)]
        t += x.size + gap
    return np.concatenate(parts), spans


def groups(segments, spans) -> list[tuple[list[int], list[int]]]:
    """(clips, segments) of each connected group: clips that share a segment are one group."""
    parent = list(range(len(spans)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    hits = [[i for i, (c0, c1) in enumerate(spans) if min(s1, c1) - max(s0, c0) > 0.02] for s0, s1, _ in segments]
    for hit in hits:
        for other in hit[1:]:
            parent[root(other)] = root(hit[0])
    found: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(spans)):
        found.setdefault(root(i), ([], []))[0].append(i)
    for k, hit in enumerate(hits):
        if hit:
            found[root(hit[0])][1].append(k)
    return list(found.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("out", type=Path)
    p.add_argument("--rows", default="60:110", help="the manifest rows to join, FIRST:END (default 60:110)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    first, end = (int(v) for v in args.rows.split(":"))
    rows = read_manifest(args.manifest)[first:end]
    audio, spans = joined(rows, args.seed)
    sf.write(str(args.out / "joined.wav"), audio, RATE)
    model = asr.load_model(device="cpu", workers=1)
    refs = [normalize_text(u.text) for u in rows]
    alone = [normalize_text(model.transcribe(u.audio_filepath).text) for u in rows]
    # the segmenter's own pieces (a Result's segments are re-cut at pauses between words, for display)
    pieces = model.segmenter.segments(audio[i: i + 30 * RATE] for i in range(0, audio.size, 30 * RATE))
    segments = [(s.start, s.start + s.samples.shape[-1] / RATE, normalize_text(model.transcribe(s.samples.numpy()).text))
                for s in pieces if not s.silent]
    kinds: dict[str, dict[str, int]] = {}
    for clips, segs in groups(segments, spans):
        kind = "one clip, one segment" if len(clips) == 1 == len(segs) else (
            "a clip cut in several" if len(clips) == 1 else "clips joined")
        ref, whole = " ".join(refs[i] for i in clips), " ".join(segments[k][2] for k in segs)
        each = " ".join(alone[i] for i in clips)
        words = len(ref.split())
        row = kinds.setdefault(kind, {"groups": 0, "clips": 0, "words": 0, "errors whole": 0, "errors alone": 0})
        row["groups"] += 1
        row["clips"] += len(clips)
        row["words"] += words
        row["errors whole"] += round(jiwer.wer(ref, whole) * words)
        row["errors alone"] += round(jiwer.wer(ref, each) * words)
        if kind != "one clip, one segment":
            print(json.dumps({"kind": kind, "clips": [[round(v, 2) for v in spans[i]] for i in clips],
                              "segments": [[round(segments[k][0], 2), round(segments[k][1], 2)] for k in segs],
                              "reference": ref, "whole": whole, "alone": each}))
    reference = " ".join(refs)
    print(json.dumps({"clips": len(rows), "segments": len(segments),
                      "WER whole": round(100 * jiwer.wer(reference, " ".join(s[2] for s in segments)), 2),
                      "WER each clip alone": round(100 * jiwer.wer(reference, " ".join(alone)), 2), "kinds": kinds}))


if __name__ == "__main__":
    main()
