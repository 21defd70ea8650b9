"""Additive noise augmentation: each training utterance, with some probability, gets noise at
a random signal-to-noise ratio (the MUSAN recipes of Kaldi/ESPnet, SpeechBrain's AddNoise).

The noise is either recorded (every audio file under ``augment.noise_dir``, read once, cropped
at random) or, without a directory, coloured noise drawn per utterance: white, pink (1/f power,
-3 dB per octave) or brown (1/f^2). Works on padded waveform batches on the model's device;
padding stays zero, so an utterance's features still do not depend on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchaudio
from torch import nn

from asr.audio import SNDFILE_EXTENSIONS, AudioError, load_audio
from asr.config import AugmentConfig
from asr.walk import files_under

COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # exponent of 1/f in the power spectrum


class NoiseError(ValueError):
    pass


@dataclass
class NoiseBank:
    """Noise recordings at one sample rate, and the files that could not be used."""

    clips: list[torch.Tensor]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @classmethod
    def load(cls, directory: str | Path, sample_rate: int) -> "NoiseBank":
        root = Path(directory)
        if not root.is_dir():
            raise NoiseError(f"augment.noise_dir {directory}: not a directory")
        clips, skipped = [], []
        for path in _audio_files(root):
            try:
                clip = load_audio(path, sample_rate)
            except AudioError as e:
                skipped.append((str(path), e.problem))
                continue
            if not clip.abs().max() > 0:  # no energy: no SNR can be reached with it
                skipped.append((str(path), "silent (all samples are zero)"))
                continue
            clips.append(clip)
        if not clips:
            why = f"; skipped {len(skipped)}: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
            raise NoiseError(f"augment.noise_dir {directory}: no usable audio files "
                             f"({', '.join(sorted(SNDFILE_EXTENSIONS))}){why}")
        return cls(clips, skipped)

    @property
    def samples(self) -> int:
        return sum(c.numel() for c in self.clips)

    def crops(self, n: int, length: int) -> torch.Tensor:
        """(n, length): a random clip per row from a random offset, repeated if shorter."""
        out = torch.empty(n, length)
        for i in range(n):
            clip = self.clips[int(torch.randint(len(self.clips), ()))]
            start = int(torch.randint(clip.numel(), ()))
            # from the offset, then the clip again from its start as often as needed: copies the
            # crop's length, not the whole (minutes-long) recording
            head = clip[start: start + length]
            need = length - head.numel()
            out[i] = torch.cat([head, clip.repeat(-(-need // clip.numel()))[:need]]) if need else head
        return out


def _audio_files(root: Path) -> list[Path]:
    """The audio files under ``root``, sorted, in folders it links to as well, each real folder
    read once (a link back up does not loop), by its own path when it lies under ``root``: the
    same list, and so the same noise for a seed, whatever a link to it is called."""
    return sorted(p for p in files_under(root, own_paths_first=True) if p.suffix.lower() in SNDFILE_EXTENSIONS)


def coloured_noise(n: int, length: int, exponents: torch.Tensor, sample_rate: int, device=None,
                   low_cut: float = 20.0) -> torch.Tensor:
    """(n, length) noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown).

    Nothing below ``low_cut`` Hz: brown noise would otherwise put most of its energy under the
    features' lowest band, and the SNR would count noise that nobody hears."""
    spectrum = torch.fft.rfft(torch.randn(n, length, device=device))
    f = torch.arange(spectrum.shape[1], device=device, dtype=torch.float32) * (sample_rate / length)
    gain = f.clamp(min=low_cut)[None, :] ** (-exponents.to(device)[:, None] / 2)  # amplitude ~ f^(-e/2)
    return torch.fft.irfft(spectrum * gain * (f >= low_cut), n=length)


class AddNoise(nn.Module):
    """Training-mode noise: (B, samples) waveforms, (B,) lengths -> the same shapes.

    Holds no parameters or buffers, so model directories are the same with or without it.
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int):
        super().__init__()
        self.prob, (self.snr_low, self.snr_high) = cfg.noise_prob, cfg.noise_snr
        self.bank = NoiseBank.load(cfg.noise_dir, sample_rate) if cfg.noise_dir and cfg.noise_prob > 0 else None
        self.sample_rate = sample_rate

    def describe(self) -> str:
        source = (f"{len(self.bank.clips)} recordings ({self.bank.samples / self.sample_rate / 60:.1f} min)"
                  if self.bank else "white/pink/brown noise")
        text = f"{source} on {100 * self.prob:g}% of utterances at {self.snr_low:g}-{self.snr_high:g} dB SNR"
        if self.bank and self.bank.skipped:
            text += "".join(f"\n  skipped {path}: {reason}" for path, reason in self.bank.skipped)
        return text

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training or self.prob <= 0:
            return waves
        B, N = waves.shape
        mask = torch.arange(N, device=waves.device)[None, :] < lengths[:, None]
        energy = (waves.float() * mask).pow(2).sum(1)
        # A silent (all-zero) utterance has no SNR to reach: leave it alone.
        chosen = (torch.rand(B, device=waves.device) < self.prob) & (energy > 0)
        if not chosen.any():
            return waves
        if self.bank is not None:
            noise = self.bank.crops(B, N).to(waves.device)
        else:
            colours = torch.tensor(list(COLOURS.values()))[torch.randint(len(COLOURS), (B,))]
            noise = coloured_noise(B, N, colours, self.sample_rate, device=waves.device)
        # Noise with no energy cannot be scaled to any SNR (0/0): a crop of a recording's silent
        # stretch, or coloured noise on a 1-sample utterance (its one bin is DC, which is cut). Skip it.
        chosen &= (noise * mask).pow(2).sum(1) > 0
        snr = torch.empty(B, device=waves.device).uniform_(self.snr_low, self.snr_high)
        # With lengths, both energies are measured over the utterance alone; the padding the
        # noise spills into is zeroed after.
        noisy = torchaudio.functional.add_noise(waves.float(), noise, snr, lengths)
        return torch.where(chosen[:, None], noisy * mask, waves.float()).to(waves.dtype)
