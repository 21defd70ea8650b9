"""WER/CER and speed of PocketSphinx's default English model on an asr manifest.

A baseline for BENCHMARKS.md ("PocketSphinx vs asr"). It runs in its own venv so that
pocketsphinx never becomes a dependency of asr, and it does not import asr:

    python3 -m venv /tmp/ps-venv
    /tmp/ps-venv/bin/pip install pocketsphinx soundfile numpy jiwer
    OMP_NUM_THREADS=1 /tmp/ps-venv/bin/python bench/pocketsphinx_compare.py data/so762/test.jsonl

Prints one JSON line: wer, cer, utterances, audio_seconds, decode_seconds, rtf, threads.
decode_seconds counts only start_utt/process_raw/end_utt (not reading the audio or loading
the model), like the decode time of `asr evaluate`. PocketSphinx is single-threaded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import time
import unicodedata

import jiwer
import numpy as np
import soundfile as sf
from pocketsphinx import Config, Decoder

SAMPLE_RATE = 16000  # the default en-us acoustic model is 16 kHz

# Copied from asr/text.py normalize_text (this script must not import asr).
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_DASHES = re.compile(r"[\u2010-\u2015\-_/]+")


def normalize_text(text: str) -> str:
    """Lower case, unify apostrophes, drop punctuation, collapse spaces (as asr does)."""
    text = unicodedata.normalize("NFKC", text.translate(_APOSTROPHES)).lower()
    text = _DASHES.sub(" ", text)
    kept = [ch if ch == "'" or unicodedata.category(ch)[0] in "LNM" else " " for ch in text]
    words = [w.strip("'") for w in "".join(kept).split()]
    return " ".join(w for w in words if w)


def load_int16(path: str) -> np.ndarray:
    """Mono 16 kHz int16 samples; other rates are resampled linearly (the corpus is 16 kHz)."""
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        n = int(round(len(audio) * SAMPLE_RATE / sr))
        audio = np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", help="JSON lines with audio_filepath and text")
    parser.add_argument("--limit", type=int, help="only the first N utterances")
    parser.add_argument("--output", "-o", help="write REF/HYP lines here")
    args = parser.parse_args()

    decoder = Decoder(Config())  # default: bundled en-us acoustic model, dictionary and LM
    refs, hyps, skipped = [], [], []
    audio_seconds = decode_seconds = 0.0
    out = open(args.output, "w") if args.output else None
    with open(args.manifest) as f:
        for i, line in enumerate(f):
            if args.limit is not None and i >= args.limit:
                break
            entry = json.loads(line)
            path = entry["audio_filepath"]
            try:
                samples = load_int16(path)
            except Exception as e:  # a batch goes on; skipped files are reported
                print(f"{path}: cannot read audio: {e}", file=sys.stderr)
                skipped.append(path)
                continue
            start = time.perf_counter()
            decoder.start_utt()
            decoder.process_raw(samples.tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            decode_seconds += time.perf_counter() - start
            audio_seconds += len(samples) / SAMPLE_RATE
            refs.append(normalize_text(entry["text"]))
            hyps.append(normalize_text(hyp.hypstr if hyp is not None else ""))
            if out:
                out.write(f"REF: {refs[-1]}\nHYP: {hyps[-1]}\n")
    if out:
        out.close()
    summary = {
        "system": "pocketsphinx " + importlib.metadata.version("pocketsphinx"),
        "wer": round(jiwer.wer(refs, hyps), 4),
        "cer": round(jiwer.cer(refs, hyps), 4),
        "utterances": len(refs),
        "skipped": len(skipped),
        "audio_seconds": round(audio_seconds, 1),
        "decode_seconds": round(decode_seconds, 2),
        "rtf": round(decode_seconds / audio_seconds, 4) if audio_seconds else None,
        "threads": 1,
    }
    print(json.dumps(summary))
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
