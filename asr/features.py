"""Feature frontends: waveform -> normalized spectral features, on CPU or GPU.

All frontends are torch modules working on padded batches, so features are computed on the
same device as the model, batch by batch. Padding never leaks into results: every frame
beyond an utterance's length is zeroed, so an utterance gets the same features alone or in a
batch.

- ``fbank``: log mel filterbank (HTK mel scale, natural log, as Kaldi's fbank).
- ``mfcc``: DCT-II (orthonormal) of the log mel energies in dB, as librosa.
- ``spectrogram``: log linear power spectrogram, the DeepSpeech2 input.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torchaudio
from torch import nn

from asr.config import AugmentConfig, FeatureConfig
from asr.noise import AddNoise

LOG_FLOOR = 1e-6


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class FeatureExtractor(nn.Module):
    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.hop_length = cfg.hop_length
        # pad_mode="constant": a reflected pad would read the neighbour's zeros in a batch
        # but real samples when alone; zeros give the same frames either way.
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=cfg.n_fft, hop_length=cfg.hop_length, power=2.0, center=True, pad_mode="constant")
        if cfg.kind in ("fbank", "mfcc"):
            self.register_buffer("mel_fb", cfg.mel_filterbank(), persistent=False)  # (freqs, mels)
        if cfg.kind == "mfcc":
            dct = torchaudio.functional.create_dct(cfg.n_mfcc, cfg.n_mels, norm="ortho")
            self.register_buffer("dct", dct, persistent=False)  # (mels, mfcc)

    def output_lengths(self, wave_lengths: torch.Tensor) -> torch.Tensor:
        return wave_lengths // self.hop_length + 1

    def forward(self, waves: torch.Tensor, wave_lengths: torch.Tensor):
        """(B, samples), (B,) -> features (B, frames, dim), frame lengths (B,), computed in float32 (or
        float64, the default dtype a model was built under) whatever the module was cast to; a
        model.half() or bfloat16 cast has rounded the window and filters, though, which moves quiet
        features a little (up to about 0.3 under bfloat16, 0.05 under float16)."""
        # An FFT or mel product in fp16/bf16 loses the quiet bins: none under any device's autocast, nor
        # with filters a model.half() cast.
        if not torch.amp.is_autocast_available(waves.device.type):  # meta: no autocast to leave
            return self._features(waves, wave_lengths)
        with torch.autocast(waves.device.type, enabled=False):
            return self._features(waves, wave_lengths)

    def _features(self, waves: torch.Tensor, wave_lengths: torch.Tensor):
        if not waves.is_floating_point():  # int16 PCM would be read as +-32768, silently 90 dB too loud
            raise TypeError(f"waves must be float samples in [-1, 1], not {waves.dtype} (divide int16 PCM by 32768)")
        if waves.shape[0] == 0:  # (MKL's FFT refuses it with a message that names no batch)
            raise ValueError("no features of an empty batch: 0 waves given")
        if waves.shape[1] == 0:  # torch.stft cannot frame 0 samples: one padding zero gives the frame
            waves = waves.new_zeros(waves.shape[0], 1)  # an empty clip gets beside a longer one
        # Samples past a length may hold anything (a reused buffer, NaN): the last frames' windows
        # reach into them, so they become the zeros a lone clip is padded with (where, not a
        # product: NaN * 0 is NaN).
        valid = lengths_to_mask(wave_lengths, waves.shape[1])
        waves = torch.where(valid, waves.float(), 0.0)
        if self.cfg.preemphasis:
            waves = torch.cat([waves[:, :1], waves[:, 1:] - self.cfg.preemphasis * waves[:, :-1]], 1)
            waves = waves * valid
        power = self.spectrogram(waves)  # (B, freqs, frames)
        if self.cfg.kind == "spectrogram":
            feats = torch.log(power + LOG_FLOOR)
        else:
            mel = torch.matmul(power.transpose(1, 2), self.mel_fb.to(power.dtype)).transpose(1, 2)
            if self.cfg.kind == "fbank":
                feats = torch.log(mel + LOG_FLOOR)
            else:
                db = 10.0 * torch.log10(mel.clamp(min=1e-10))
                feats = torch.matmul(db.transpose(1, 2), self.dct.to(db.dtype)).transpose(1, 2)
        lengths = self.output_lengths(wave_lengths).clamp(max=feats.shape[-1])
        feats = feats.transpose(1, 2)  # (B, frames, dim)
        return feats * lengths_to_mask(lengths, feats.shape[1])[..., None], lengths


class Normalizer(nn.Module):
    """Mean/variance normalization: global (training-set statistics) or per utterance."""

    def __init__(self, dim: int, mode: str = "global"):
        super().__init__()
        self.mode = mode
        # Not in the state dict: they are saved as cmvn.json beside the weights.
        self.register_buffer("mean", torch.zeros(dim), persistent=False)
        self.register_buffer("std", torch.ones(dim), persistent=False)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_to_mask(lengths, feats.shape[1])[..., None]
        if self.mode == "global":
            out = (feats - self.mean.to(feats.dtype)) / self.std.to(feats.dtype)  # not a model.half()'s dtype
        elif self.mode == "utterance":
            n = lengths.clamp(min=1)[:, None, None].to(feats.dtype)
            mean = (feats * mask).sum(1, keepdim=True) / n
            var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / n
            out = (feats - mean) / (var.sqrt() + 1e-5)
        else:
            out = feats
        return out * mask

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def save(self, path: str | Path) -> None:
        data = {"mode": self.mode, "mean": self.mean.tolist(), "std": self.std.tolist()}
        Path(path).write_text(json.dumps(data) + "\n")

    def load(self, path: str | Path) -> None:
        """The statistics ``save`` wrote, checked (a ValueError naming ``path``): a NaN or a std <= 0
        would turn every feature into NaN or noise."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{path}: unreadable feature statistics ({e})") from None
        dim, stats = self.mean.numel(), []
        for key in ("mean", "std"):
            values = data.get(key) if isinstance(data, dict) else None
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in values):
                raise ValueError(f"{path}: {key!r} must be a list of numbers")
            if len(values) != dim:
                raise ValueError(f"{path}: {len(values)} {key} values for features of dimension {dim} "
                                 f"(config.yaml's features)")
            if not all(map(math.isfinite, values)):
                raise ValueError(f"{path}: {key!r} holds NaN or infinite values")
            stats.append(torch.tensor(values, dtype=torch.float32))
        if not bool((stats[1] > 0).all()):
            raise ValueError(f"{path}: 'std' holds values <= 0")
        self.set_stats(*stats)


class StatsAccumulator:
    """Running sums for global mean/variance over many padded feature batches (float64)."""

    def __init__(self, dim: int):
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sumsq = torch.zeros(dim, dtype=torch.float64)
        self.count = 0

    def add(self, feats: torch.Tensor, lengths: torch.Tensor) -> None:
        mask = lengths_to_mask(lengths, feats.shape[1])
        valid = feats[mask].double().cpu()
        self.sum += valid.sum(0)
        self.sumsq += (valid ** 2).sum(0)
        self.count += valid.shape[0]

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ValueError("no frames to compute feature statistics from")
        mean = self.sum / self.count
        var = (self.sumsq / self.count - mean ** 2).clamp(min=1e-10)
        return mean.float(), var.sqrt().float()


def _band_masks(lengths: torch.Tensor, size: int, max_width: torch.Tensor, n: int,
                generator=None) -> torch.Tensor:
    """n random bands per row, each of width < max_width (per row), inside [0, lengths)."""
    B = lengths.shape[0]
    positions = torch.arange(size, device=lengths.device)
    mask = torch.zeros(B, size, dtype=torch.bool, device=lengths.device)
    for _ in range(n):
        width = (torch.rand(B, device=lengths.device, generator=generator) * max_width).long()
        start = (torch.rand(B, device=lengths.device, generator=generator)
                 * (lengths - width).clamp(min=1)).long()
        mask |= (positions[None] >= start[:, None]) & (positions[None] < (start + width)[:, None])
    return mask


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al. 2019), each example masked independently.

    Masked values are the mean: 0 for normalized features; without normalization (0 is then a
    loud log-mel value, not a neutral one) the utterance's own mean. Active in training mode only.
    """

    def __init__(self, cfg: AugmentConfig, normalized: bool = True):
        super().__init__()
        self.cfg, self.normalized = cfg, normalized

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.cfg.enabled:
            return feats
        B, T, F = feats.shape
        dim = torch.full((B,), F, device=feats.device)
        fmask = _band_masks(dim, F, torch.full((B,), float(self.cfg.freq_mask_width + 1), device=feats.device),
                            self.cfg.freq_masks)
        tmask = _band_masks(lengths, T, lengths.float() * self.cfg.time_mask_fraction + 1, self.cfg.time_masks)
        masked = fmask[:, None, :] | tmask[:, :, None]
        if self.normalized:
            return feats.masked_fill(masked, 0.0)
        valid = lengths_to_mask(lengths, T)[..., None]  # padding stays 0
        mean = (feats * valid).sum((1, 2), keepdim=True) / (lengths.clamp(min=1)[:, None, None] * F)
        return torch.where(masked & valid, mean.to(feats.dtype), feats)


class Frontend(nn.Module):
    """Waveforms -> (noise) -> features -> normalization -> SpecAugment; augmentation in training only."""

    def __init__(self, features: FeatureConfig, augment: AugmentConfig | None = None):
        super().__init__()
        self.sample_rate = features.sample_rate
        self.extractor = FeatureExtractor(features)
        self.normalizer = Normalizer(features.dim, features.normalize)
        self.set_augment(augment or AugmentConfig(freq_masks=0, time_masks=0))

    def set_augment(self, cfg: AugmentConfig) -> None:
        """Training-time augmentation; neither part has weights, so model directories load without it."""
        self.noise = AddNoise(cfg, self.sample_rate)
        self.augment = SpecAugment(cfg, normalized=self.normalizer.mode != "none")

    def forward(self, waves, wave_lengths):
        waves = self.noise(waves, wave_lengths)
        feats, lengths = self.extractor(waves, wave_lengths)
        feats = self.normalizer(feats, lengths)
        return self.augment(feats, lengths), lengths
