"""What cutting a segment's long quiet edges is worth (``SegmenterOptions.trim_after_seconds`` /
``trim_margin_seconds``: quiet edges over 1 s cut to 0.5 s): WER of the first few utterances of each
speaker of a manifest with LEAD seconds of digital silence put before each by sox (``sox IN OUT pad
LEAD 0``), run as ``asr evaluate`` runs an utterance (its speech span: ``Transcriber.speech``) and
without the cut (the whole padded wave), and of the clips as they are (cut as evaluate cuts them).

    python bench/edge_trim.py data/so762/valid.jsonl [--per-speaker 3] [--lead 3] [--decoders auto greedy]

``auto``: the built-in package (n-best rescoring); ``greedy``: its first model alone. Prints a JSON
line per decoder (README.md, "a segment's quiet edges").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asr  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402
from asr.text import normalize_text  # noqa: E402


def first_of_each_speaker(rows, n: int):
    seen: dict[str, int] = {}
    out = []
    for u in rows:
        seen[u.speaker] = seen.get(u.speaker, 0) + 1
        if seen[u.speaker] <= n:
            out.append(u)
    return out


def sox_padded(path: str, lead: float, folder: str) -> np.ndarray:
    out = f"{folder}/padded.wav"
    subprocess.run(["sox", path, out, "pad", f"{lead:g}", "0"], check=True)
    return sf.read(out, dtype="float32")[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("--per-speaker", type=int, default=3, help="the first N utterances of each speaker")
    p.add_argument("--lead", type=float, default=3.0, help="seconds of digital silence put before each")
    p.add_argument("--decoders", nargs="+", default=["auto", "greedy"])
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = first_of_each_speaker(read_manifest(args.manifest), args.per_speaker)
    references = [normalize_text(u.text) for u in rows]
    clips = [sf.read(u.audio_filepath, dtype="float32")[0] for u in rows]
    with tempfile.TemporaryDirectory() as folder:
        padded = [sox_padded(u.audio_filepath, args.lead, folder) for u in rows]
    for decoder in args.decoders:
        model = asr.load_model(device="cpu", workers=1, decoder=decoder)
        row = {"decoder": decoder, "utterances": len(rows), "words": sum(len(r.split()) for r in references),
               "lead_seconds": args.lead}
        for name, waves, cut in (("padded, without the cut", padded, False), ("padded, with the cut", padded, True),
                                 ("as they are", clips, True)):
            waves = [torch.from_numpy(np.ascontiguousarray(w)) for w in waves]
            if cut:
                waves = [model.speech(w) for w in waves]
            texts = [r.text for i in range(0, len(waves), 16) for r in model.transcribe_waveforms(waves[i: i + 16])]
            row[name] = round(100 * jiwer.wer(references, [normalize_text(t) for t in texts]), 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
