"""Pack manifests and their audio small enough to travel to the GPU machine (64 MiB per call).

    OMP_NUM_THREADS=1 nice -n 10 python bench/pack_for_device.py .device/so762 \
        train=data/so762/train.jsonl@0.92 valid=data/so762/valid.jsonl@0.92 \
        tts=data/tts_lj1500/train.jsonl@0.97

Each SPLIT=MANIFEST@LEVEL re-encodes the manifest's audio as Ogg Opus (soundfile, libsndfile
``compression_level`` LEVEL in [0, 1]: higher is smaller; measured 2026-11-26 on speechocean762
with libsndfile 1.2.2: 0.9 ~ 33 kb/s, 0.93 ~ 25, 0.95 ~ 20, 0.97 ~ 16, 1.0 ~ 8) into
OUT/SPLIT/ID.ogg and writes OUT/SPLIT.jsonl with paths relative to OUT (``read_manifest``
resolves a relative ``audio_filepath`` against the manifest's folder, so the copy works
wherever the folder lands). Files already packed are kept (delete OUT/SPLIT to redo a split).
Prints kb/s and MiB per split and the total.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf


def pack_split(name: str, manifest: Path, level: float, out: Path) -> tuple[int, float, int]:
    """Returns (utterances, audio seconds, bytes) of the packed split."""
    (out / name).mkdir(parents=True, exist_ok=True)
    rows, seconds, size = [], 0.0, 0
    for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        src = Path(row["audio_filepath"])
        if not src.is_absolute():
            src = manifest.parent / src
        stem = row.get("id") or f"{lineno:06d}"
        dst = out / name / f"{stem}.ogg"
        if not dst.exists():
            audio, rate = sf.read(str(src), dtype="float32")
            tmp = dst.with_suffix(".tmp")
            sf.write(str(tmp), audio, rate, format="OGG", subtype="OPUS", compression_level=level)
            tmp.replace(dst)
        rows.append({**row, "audio_filepath": f"{name}/{dst.name}"})
        seconds += float(row["duration"])
        size += dst.stat().st_size
    (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows), seconds, size


def parse_spec(spec: str) -> tuple[str, Path, float]:
    try:
        name, rest = spec.split("=", 1)
        manifest, level = rest.rsplit("@", 1)
        return name, Path(manifest), float(level)
    except ValueError:
        raise SystemExit(f"{spec!r}: expected SPLIT=MANIFEST@LEVEL, e.g. train=data/so762/train.jsonl@0.93")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("splits", nargs="+", metavar="SPLIT=MANIFEST@LEVEL")
    args = p.parse_args(argv)
    total = 0
    for name, manifest, level in map(parse_spec, args.splits):
        if not manifest.is_file():
            raise SystemExit(f"{manifest}: manifest not found")
        n, seconds, size = pack_split(name, manifest, level, args.out)
        total += size
        print(f"{name}: {n} utterances, {seconds / 3600:.2f} h, level {level}: "
              f"{size * 8 / max(seconds, 1e-9) / 1000:.1f} kb/s, {size / 2**20:.1f} MiB", flush=True)
    print(f"total: {total / 2**20:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
