"""The training dataset and collation (batches: asr.batching), over manifests (asr.manifest, whose
names are imported from here too: ``from asr.data import read_manifest, Utterance``)."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, fields, replace
from typing import Iterable

import torch

from asr.audio import AudioError, load_audio, resample
from asr.config import perturbed_rate
from asr.manifest import ManifestError, Utterance, read_manifest, write_manifest  # noqa: F401 (re-exported)
from asr.text import UnknownCharacterError, normalize_text
from asr.tokenizers import Tokenizer


@dataclass
class Example:
    index: int
    waveform: torch.Tensor  # (samples,) float32
    targets: torch.Tensor | None  # (label_len,) int64; None: a transcript the tokenizer cannot spell
    phones: torch.Tensor | None = None  # (phone_len,) int64; None: no phone transcription


@dataclass
class Batch:
    waveforms: torch.Tensor  # (B, T) float32, zero padded
    wave_lengths: torch.Tensor  # (B,) int64
    targets: torch.Tensor  # (B, L) int64, zero padded
    target_lengths: torch.Tensor  # (B,)
    indices: list[int]
    # Phone CTC targets (train.phone_ctc_weight), else None; length 0: no phones for that utterance.
    phone_targets: torch.Tensor | None = None  # (B, P) int64, zero padded
    phone_lengths: torch.Tensor | None = None  # (B,)
    # (B,) bool: False for an item with no labels (targets None; only SpeechDataset(keep_unspellable=True)
    # makes them): its zero-length row is padding, which no loss may count. None: all True.
    has_labels: torch.Tensor | None = None

    def __post_init__(self):
        if self.has_labels is None:
            self.has_labels = torch.ones(len(self.indices), dtype=torch.bool)

    def map_tensors(self, fn) -> "Batch":
        """The same batch with ``fn`` applied to every tensor (the phone targets too, when present)."""
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})

    def to(self, device, non_blocking=False) -> "Batch":
        return self.map_tensors(lambda t: t.to(device, non_blocking=non_blocking))


def to_int16(wave: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``wave`` as int16 samples and the scale that gives them back (half the memory of float32;
    the cache is what holds a corpus in RAM). 16-bit PCM as read comes back exactly (scale
    1/32768, libsndfile's); other audio (float, 24-bit, resampled) is scaled to its own peak:
    nothing clipped above full scale, a quiet clip kept to 16 bits of its level, as inference reads it."""
    pcm = wave * 32768.0  # exact: a power of two
    if bool(((pcm == pcm.round()) & (pcm >= -32768) & (pcm <= 32767)).all()):
        return pcm.to(torch.int16), 1 / 32768
    scale = float(wave.abs().max()) / 32767
    return (wave / scale).round().clamp(-32767, 32767).to(torch.int16), scale


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances with their token ids; audio decoded once and kept in memory as int16 (``to_int16``).

    Items are ``(index, speed)`` pairs so that speed perturbation (resampling, as in Kaldi's
    3-way perturbation) is chosen by the sampler, reproducibly, and its result cached too.
    Utterances with an empty transcript or one the tokenizer cannot spell (characters outside
    the vocabulary) are left out, each in ``skipped`` with why. With ``keep_unspellable`` (the
    valid set, scored as `asr evaluate` scores it) they are kept: an empty transcript with no
    labels to emit (CTC's loss then asks for silence), an unspellable one with ``targets`` None
    (no labels; collate marks it in ``Batch.has_labels``) and its reason in ``unspellable``.
    With a ``phone_lexicon`` each item also carries the transcript's phones (None where a word
    is missing from the lexicon). With ``bpe_dropout`` (subword units only) each item's labels
    are a fresh BPE-dropout segmentation, a function of (seed, epoch, utterance), so that a
    resumed run sees the labels an uninterrupted one does; ``set_epoch`` says which epoch.
    Audio that cannot be read raises AudioError, is warned about once (naming ``source``, the
    manifest) and is not tried again: ``unreadable`` maps its index to the problem.
    ``span`` (samples -> [lo, hi)), when given, cuts each clip as read: the valid set gets the
    quiet-edge cut that evaluation and transcription make, so that training picks its best
    checkpoint on what ``asr evaluate`` will score.
    """

    def __init__(self, utterances: list[Utterance], tokenizer: Tokenizer, sample_rate: int,
                 cache: bool = True, phone_lexicon=None, bpe_dropout: float = 0.0, seed: int = 0,
                 source: str = "", span=None, keep_unspellable: bool = False):
        self.sample_rate = sample_rate
        self.cache, self.source, self.span = cache, source, span
        self.unreadable: dict[int, str] = {}
        self.missing: list[tuple[str, str]] = []  # (file, problem) its loader left out unopened (not found...)
        self.unspellable: dict[int, str] = {}  # index -> why its transcript has no labels (keep_unspellable)
        self.long: set[int] | None = None  # those validation decodes in pieces (asr.selection.long_utterances)
        self.tokenizer, self.bpe_dropout, self.seed, self.epoch = tokenizer, bpe_dropout, seed, 0
        self.texts: list[str] = []
        self._cache: dict[tuple[int, float], tuple[torch.Tensor, float]] = {}  # to_int16's
        self.utterances, self.skipped = [], []
        self.targets: list[torch.Tensor | None] = []
        self.phones: list[torch.Tensor | None] | None = [] if phone_lexicon is not None else None
        for utt in utterances:
            text, ids, why = normalize_text(utt.text), None, None
            try:
                ids = tokenizer.encode(text) if text else []
            except UnknownCharacterError as e:
                why = str(e)
            if (not text or why) and not keep_unspellable:
                self.skipped.append((utt, why or "empty transcript"))
                continue
            if why:
                self.unspellable[len(self.utterances)] = why
            self.utterances.append(utt)
            self.texts.append(text)
            self.targets.append(None if ids is None else torch.tensor(ids, dtype=torch.long))
            if self.phones is not None:
                phone_ids = phone_lexicon.encode(text) if ids else None  # none for a kept empty or unspellable one
                self.phones.append(None if phone_ids is None else torch.tensor(phone_ids, dtype=torch.long))

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def durations(self) -> list[float]:
        return [u.duration for u in self.utterances]

    def waveform(self, index: int, speed: float = 1.0) -> torch.Tensor:
        key = (index, speed)
        stored = self._cache.get(key)
        if stored is None:
            wave = self._load(index)
            if speed != 1.0:
                # Played `speed` times faster: pretend it was recorded at rate*speed.
                wave = resample(wave, perturbed_rate(self.sample_rate, speed), self.sample_rate)
            # Always through int16, cached or not, so that a resumed run (empty cache) sees
            # exactly the samples an uninterrupted one does.
            stored = to_int16(wave)
            if self.cache:
                self._cache[key] = stored
        samples, scale = stored
        return samples.float() * scale

    def _load(self, index: int) -> torch.Tensor:
        path = self.utterances[index].audio_filepath
        if index in self.unreadable:  # said once; every epoch would try (and warn) again
            raise AudioError(path, self.unreadable[index])
        try:
            wave = load_audio(path, self.sample_rate)
        except AudioError as e:
            self.unreadable[index] = e.problem
            print(f"warning: {f'{self.source}: ' if self.source else ''}skipped {e}", file=sys.stderr, flush=True)
            raise
        if self.span is None:
            return wave
        lo, hi = self.span(wave.numpy())
        return wave[lo:hi]

    def keep(self, indices: Iterable[int]) -> None:
        """Only these utterances, in this order (renumbered; their decoded audio kept)."""
        new = {old: i for i, old in enumerate(indices)}

        def pick(items):
            return [items[old] for old in new]

        self.utterances, self.texts, self.targets = pick(self.utterances), pick(self.texts), pick(self.targets)
        if self.phones is not None:
            self.phones = pick(self.phones)
        self._cache = {(new[i], speed): w for (i, speed), w in self._cache.items() if i in new}
        self.unreadable = {new[i]: problem for i, problem in self.unreadable.items() if i in new}
        self.unspellable = dict(sorted((new[i], why) for i, why in self.unspellable.items() if i in new))
        self.long = None  # measured again, on the new numbering, when asked

    def drop_unreadable(self) -> list[tuple[Utterance, str]]:
        """Read every utterance now (kept, when caching) and leave out those whose audio cannot be
        read; returns them with their problems. For a set read whole every epoch (validation),
        whose reader cannot skip an utterance the way the training loader does."""
        for index in range(len(self)):
            try:
                self.waveform(index)
            except AudioError:
                pass  # warned about, and in self.unreadable
        dropped = [(self.utterances[i], problem) for i, problem in sorted(self.unreadable.items())]
        if dropped:
            self.keep(i for i in range(len(self)) if i not in self.unreadable)
        return dropped

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def labels(self, index: int) -> torch.Tensor | None:
        if not self.bpe_dropout or self.targets[index] is None:
            return self.targets[index]
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index)
        return torch.tensor(self.tokenizer.encode(self.texts[index], self.bpe_dropout, rng), dtype=torch.long)

    def __getitem__(self, item) -> Example:
        index, speed = item if isinstance(item, tuple) else (item, 1.0)
        phones = self.phones[index] if self.phones is not None else None
        return Example(index, self.waveform(index, speed), self.labels(index), phones)


def collate(examples: list[Example]) -> Batch:
    """Examples padded into one batch; one with no labels (targets None) gets a zero-length row
    and False in ``has_labels``."""
    wave_lengths = torch.tensor([e.waveform.numel() for e in examples], dtype=torch.long)
    has_labels = torch.tensor([e.targets is not None for e in examples], dtype=torch.bool)
    labels = [e.targets if e.targets is not None else torch.zeros(0, dtype=torch.long) for e in examples]
    target_lengths = torch.tensor([t.numel() for t in labels], dtype=torch.long)
    waves = torch.zeros(len(examples), int(wave_lengths.max()))
    targets = torch.zeros(len(examples), max(1, int(target_lengths.max())), dtype=torch.long)
    for i, (e, t) in enumerate(zip(examples, labels)):
        waves[i, : e.waveform.numel()] = e.waveform
        targets[i, : t.numel()] = t
    batch = Batch(waves, wave_lengths, targets, target_lengths, [e.index for e in examples], has_labels=has_labels)
    if any(e.phones is not None for e in examples):
        batch.phone_lengths = torch.tensor([0 if e.phones is None else e.phones.numel() for e in examples])
        batch.phone_targets = torch.zeros(len(examples), max(1, int(batch.phone_lengths.max())), dtype=torch.long)
        for i, e in enumerate(examples):
            if e.phones is not None:
                batch.phone_targets[i, : e.phones.numel()] = e.phones
    return batch


def frames_needed(targets: torch.Tensor) -> int:
    """CTC needs one frame per label plus one blank between each pair of repeated labels."""
    if targets.numel() == 0:
        return 0
    repeats = int((targets[1:] == targets[:-1]).sum()) if targets.numel() > 1 else 0
    return targets.numel() + repeats


def total_hours(utterances: list[Utterance]) -> float:
    return sum(u.duration for u in utterances) / 3600.0
