"""Transcription speed and accuracy of a model on a manifest: real-time factor, WER, CER.

    python bench/transcribe_rtf.py [--model DIR] [--manifest M.jsonl] [--threads N]

Without --manifest it reads the speechocean762 test (dev) split from ../shared.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from asr.corpora import import_kaldi_dir
from asr.data import read_manifest
from asr.evaluate import evaluate
from asr.transcribe import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speechocean762"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--manifest")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.manifest:
        utterances = read_manifest(args.manifest)
    else:
        utterances = import_kaldi_dir(SHARED / "test", root=SHARED).utterances
    model = load_model(args.model, device=args.device)
    t0 = time.perf_counter()
    result = evaluate(model, utterances)
    wall = time.perf_counter() - t0
    summary = result.summary()
    summary.update({"threads": torch.get_num_threads(), "wall_seconds_with_audio_loading": round(wall, 2),
                    "rtf_with_audio_loading": round(wall / result.audio_seconds, 5),
                    "model": str(model.loaded.path)})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
