"""How far past the speech a transcript's last word ends under room noise: flite sentences (clean
TTS, so the true end of the speech is known: the last moment within 40 dB of the loudest) with
0.3 s of silence before, 1 s after, and white noise at each level added; the packaged model,
greedy. With the noise floor rule (a word's tail stops near the recording's quietest audible
level, as the segmenter takes a pause) and without it (``--no-floor``: 30 dB under the word only).

    python bench/word_end_noise.py [--levels -60 -50 -40] [--voice slt]

Why ``asr.alignment.extend_word_ends`` takes a noise floor (README.md, "Word times").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asr  # noqa: E402

SENTENCES = ["we call it bear", "the cat sat on the mat", "i like to eat apples", "three two two seven",
             "she has a red car", "open the door please", "my friend is at home", "it is a good day",
             "they play football", "where is the book"]
RATE = 16000


def speech(sentence: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["flite", "-voice", voice, "-t", sentence, "-o", f"{folder}/a.wav"], check=True)
        wave, rate = sf.read(f"{folder}/a.wav", dtype="float32")
    wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, RATE).numpy()
    return np.concatenate([np.zeros(int(0.3 * RATE), np.float32), wave, np.zeros(RATE, np.float32)])


def speech_end(wave: np.ndarray) -> float:
    envelope = np.convolve(wave.astype(np.float64) ** 2, np.ones(320) / 320, "same")  # 20 ms
    return np.flatnonzero(envelope > envelope.max() * 1e-4)[-1] / RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=float, nargs="+", default=[-60.0, -50.0, -40.0], help="noise dBFS")
    parser.add_argument("--voice", default="slt")
    args = parser.parse_args()
    with_floor = asr.load_model(decoder="greedy", device="cpu")
    without = asr.load_model(decoder="greedy", device="cpu")
    without.segmenter.noise_floor = lambda energy: 0.0  # the rule off for word tails: 30 dB under the word alone
    clean = [speech(s, args.voice) for s in SENTENCES]
    rng = np.random.default_rng(0)
    print("| noise | rule | last word's end - speech end: mean | mean absolute | largest |")
    print("|---|---|---|---|---|")
    for level in args.levels:
        noisy = [c + rng.normal(0, 10 ** (level / 20), c.size).astype(np.float32) for c in clean]
        for name, transcriber in (("30 dB under the word", without), ("+ noise floor", with_floor)):
            late = np.array([transcriber.transcribe(n, sample_rate=RATE).words[-1].end - speech_end(c)
                             for c, n in zip(clean, noisy)])
            print(f"| {level:g} dBFS | {name} | {late.mean():+.3f} s | {np.abs(late).mean():.3f} s | "
                  f"{late.max():+.2f} s |")


if __name__ == "__main__":
    main()
