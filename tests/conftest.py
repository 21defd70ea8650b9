"""Shared helpers for the unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parent.parent


def syllabic_tone(seconds: float = 1.0, sample_rate: int = 16000, freq: float = 440.0,
                  amplitude: float = 0.5) -> np.ndarray:
    """A sine of peak ``amplitude`` whose loudness rises and falls 4 times a second (14 dB), as
    syllables do: the stand-in for speech. A steady tone, like steady noise, holds no speech and is
    not transcribed (asr.segmenter's steady_db)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    envelope = 0.6 + 0.4 * np.cos(2 * np.pi * 4 * t)
    return (amplitude * envelope * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_sine(path, seconds: float = 0.5, sample_rate: int = 16000, channels: int = 1,
               freq: float = 440.0, subtype: str | None = None) -> Path:
    """Write a syllabic tone (``syllabic_tone``, peak 0.5) with soundfile; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = syllabic_tone(seconds, sample_rate, freq)
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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """An untrained 2-layer bidirectional GRU (16 units) saved as a model directory: enough to
    run every code path that needs a model, with no training."""
    from asr.config import Config, ModelConfig
    from asr.model import AcousticModel
    from asr.model_dir import save_model_dir
    from asr.text import CharTokenizer

    cfg = Config(model=ModelConfig(cell="gru", num_layers=2, hidden_size=16, conv_channels=4, dropout=0.0))
    tokenizer = CharTokenizer.build(["hello world"])
    model = AcousticModel(cfg.features, cfg.model, len(tokenizer))
    return save_model_dir(tmp_path_factory.mktemp("tiny_model") / "model", cfg, model, tokenizer)


def export_rescoring_package(model_dir, folder: Path, name: str) -> Path:
    """A package that rescores, as `asr export RESCORING_FILE DIR` makes it, in ``folder/name``:
    ``model_dir`` with a packaged word LM (``folder/first``), then ``model_dir`` again as system2
    (their tune-rescoring file: ``folder/r.yaml``)."""
    from asr.cli import main
    from asr.lm import build_lm

    (folder / "text.txt").write_text("hello world\nworld hello\n")
    lm = build_lm([folder / "text.txt"], folder / "hw.arpa", order=2, use_lmplz=False)[0]
    assert main(["export", str(model_dir), str(folder / "first"), "--lm", str(lm)]) == 0
    (folder / "r.yaml").write_text(f"models: [{folder / 'first'}, {model_dir}]\nweights: [1.0, 0.5]\n"
                                   "lm_weight: 1.0\nword_score: 0.0\n")
    assert main(["export", str(folder / "r.yaml"), str(folder / name)]) == 0
    return folder / name


def ctc_log_probs(tokenizer, frames, floor: float = 1e-4):
    """Synthetic CTC outputs, one frame per entry of ``frames``: a token string (``"<blank>"``,
    ``"|"``, a letter) gets probability ~1, or a dict {token: probability} shares the frame.
    Returns (log_probs (1, T, V), lengths (1,)) as an acoustic model would."""
    import torch

    index = {t: i for i, t in enumerate(tokenizer.tokens)}
    rows = torch.full((len(frames), len(tokenizer)), floor)
    for t, frame in enumerate(frames):
        for token, p in ({frame: 1.0} if isinstance(frame, str) else frame).items():
            rows[t, index[token]] = p
    rows = rows / rows.sum(-1, keepdim=True)
    return rows.log().unsqueeze(0), torch.tensor([len(frames)])


def spelled_frames(text: str):
    """Frames that spell ``text`` cleanly: each letter (``|`` between words) then a blank."""
    frames = []
    for ch in text.replace(" ", "|"):
        frames += [ch, "<blank>"]
    return frames
