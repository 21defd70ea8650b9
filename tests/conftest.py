"""Shared helpers for the unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parent.parent


def write_sine(path, seconds: float = 0.5, sample_rate: int = 16000, channels: int = 1,
               freq: float = 440.0, subtype: str | None = None) -> Path:
    """Write a sine tone (amplitude 0.5) with soundfile; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    data = tone if channels == 1 else np.stack([tone] * channels, axis=1)
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path


@pytest.fixture
def sine_wav(tmp_path):
    """Factory: ``sine_wav("a.wav", seconds=0.5, sample_rate=16000, channels=1)`` -> path in tmp_path."""

    def make(name: str = "sine.wav", **kwargs) -> Path:
        return write_sine(tmp_path / name, **kwargs)

    return make


SHARED_SO762 = REPO_ROOT.parent / "shared" / "data" / "speechocean762"


def _shortest_utterances(split: str, n: int):
    """The n shortest utterances of a shared speechocean762 split: (id, path, text, speaker, seconds)."""
    base = SHARED_SO762 / split
    table = lambda name: dict(line.split(maxsplit=1) for line in (base / name).read_text().splitlines())  # noqa: E731
    wavs, texts, speakers = table("wav.scp"), table("text"), table("utt2spk")
    rows = []
    for utt, rel in wavs.items():
        path = SHARED_SO762 / rel.strip()
        rows.append((sf.info(str(path)).duration, utt, path, texts[utt].strip(), speakers[utt].strip()))
    rows.sort()
    return [(u, p, t, s, d) for d, u, p, t, s in rows[:n]]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """20 + 4 of the shortest real utterances of the train split, as train/valid manifests."""
    import json

    if not SHARED_SO762.is_dir():
        pytest.skip("../shared/data/speechocean762 is not present")
    out = tmp_path_factory.mktemp("tiny_corpus")
    lines = [json.dumps({"audio_filepath": str(p), "duration": d, "text": t, "speaker": s, "id": u})
             for u, p, t, s, d in _shortest_utterances("train", 24)]
    (out / "train.jsonl").write_text("\n".join(lines[:20]) + "\n")
    (out / "valid.jsonl").write_text("\n".join(lines[20:]) + "\n")
    return out
