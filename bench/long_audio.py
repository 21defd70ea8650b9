"""Long-audio transcription: peak memory (RSS) and real-time factor on a synthesized long file.

The file is real speech (validation utterances of speechocean762, looped) with 0.3-2 s pauses,
written as FLAC to /tmp block by block, so making it needs no memory either. Each length is
transcribed in a fresh process so its peak RSS (``resource.getrusage``) is its own.

    OMP_NUM_THREADS=1 .venv/bin/python bench/long_audio.py --model exp/so762_small/best --minutes 6 60
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def synthesize(path: Path, minutes: float, manifest: Path, seed: int = 0) -> float:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rng = np.random.default_rng(seed)
    target, written, i = int(minutes * 60 * 16000), 0, 0
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, format="FLAC", subtype="PCM_16") as out:
        while written < target:
            data, rate = sf.read(rows[i % len(rows)]["audio_filepath"], dtype="float32")
            assert rate == 16000
            pause = np.zeros(int(rng.uniform(0.3, 2.0) * rate), dtype=np.float32)
            chunk = np.concatenate([data, pause])[: target - written]
            out.write(chunk)
            written += chunk.size
            i += 1
    return written / 16000


def run_one(path: str, model: str | None, decoder: str, lm: str | None) -> dict:
    """In this (fresh) process: load, transcribe, report time and peak RSS."""
    import torch

    import asr

    torch.set_num_threads(1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    options = {"lm": lm} if lm else {}
    transcriber = asr.load_model(model, decoder=decoder, device="cpu", **options)
    start = time.perf_counter()
    result = transcriber.transcribe(path)
    seconds = time.perf_counter() - start
    return {"audio_seconds": round(result.duration, 1), "decode_seconds": round(seconds, 1),
            "rtf": round(seconds / result.duration, 4), "segments": len(result.segments), "words": len(result.words),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_after_imports_mib": round(rss_before / 1024)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory (default: the packaged model)")
    p.add_argument("--minutes", type=float, nargs="+", default=[6, 60])
    p.add_argument("--manifest", default=str(ROOT / "data" / "so762" / "valid.jsonl"))
    p.add_argument("--decoder", default="greedy")
    p.add_argument("--lm")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.model, args.decoder, args.lm)))
        return
    for minutes in args.minutes:
        path = Path(f"/tmp/asr_long_{minutes:g}min.flac")
        if not path.exists():
            synthesize(path, minutes, Path(args.manifest))
        cmd = [sys.executable, __file__, "--child", str(path), "--decoder", args.decoder]
        cmd += ["--model", args.model] if args.model else []
        cmd += ["--lm", args.lm] if args.lm else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(json.dumps({"minutes": minutes, "file": str(path), **row}), flush=True)


if __name__ == "__main__":
    main()
