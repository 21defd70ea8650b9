"""Typed configuration: frozen dataclasses, each checked as it is made (read from YAML and
``key=value`` overrides by asr.config_files).

A config has one section per dataclass (``features``, ``model``, ``augment``, ``train``).
Overrides use dotted keys: ``train.lr=1e-3 model.cell=gru``. Unknown keys are errors, not
silently ignored: a typo in a config must never train the wrong model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from asr.user_warnings import warn


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "fbank"  # fbank (log-mel) | mfcc | spectrogram (linear, DeepSpeech2)
    sample_rate: int = 16000
    n_fft: int = 400  # 25 ms window at 16 kHz
    hop_length: int = 160  # 10 ms
    n_mels: int = 80
    n_mfcc: int = 40
    f_min: float = 20.0
    f_max: float | None = None
    preemphasis: float = 0.97
    # "global": mean/variance from the training set, stored with the model;
    # "utterance": each utterance normalized on its own; "none".
    normalize: str = "global"

    def __post_init__(self):
        _check_choice("features.kind", self.kind, ("fbank", "mfcc", "spectrogram"))
        _check_choice("features.normalize", self.normalize, ("global", "utterance", "none"))
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            _check_at_least(f"features.{name}", getattr(self, name), 1)
            _check_at_most(f"features.{name}", getattr(self, name), _LARGEST)
        if self.hop_length > self.n_fft:  # each window is n_fft samples long: the rest would never be read
            raise ConfigError(f"features.hop_length={self.hop_length} is longer than features.n_fft={self.n_fft}: "
                              f"the {self.hop_length - self.n_fft} samples between windows would be skipped")
        if self.f_max is not None and not math.isfinite(self.f_max):  # every mel filter NaN: every feature
            raise ConfigError(f"features.f_max must be a finite frequency, got {self.f_max}")
        top = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0.0 <= self.f_min < top:
            where = "features.f_max" if self.f_max is not None else "sample_rate / 2"
            raise ConfigError(f"features.f_min must be >= 0 and below {where} ({top:g}), got {self.f_min}")
        if not 0.0 <= self.preemphasis <= 1.0:  # as Kaldi's preemphasis-coefficient; 0: off
            raise ConfigError(f"features.preemphasis must be in [0, 1], got {self.preemphasis}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:  # the DCT keeps at most n_mels coefficients
            raise ConfigError(f"features.n_mfcc={self.n_mfcc} must be at most features.n_mels={self.n_mels}")
        if self.kind in ("fbank", "mfcc") and self.n_mels > self.n_fft // 2 + 1:  # before building them
            raise ConfigError(f"features.n_mels={self.n_mels} is more than the {self.n_fft // 2 + 1} FFT bins of "
                              f"features.n_fft={self.n_fft}: some mel filters would hold no bin")
        if self.kind in ("fbank", "mfcc"):
            empty = int((self.mel_filterbank().amax(dim=0) == 0).sum())  # a feature that is always 0
            if empty and self.f_max is not None and self.f_max > self.sample_rate / 2:
                raise ConfigError(f"features.f_max={self.f_max:g} is above sample_rate / 2 "
                                  f"({self.sample_rate / 2:g}): {empty} mel filter(s) would hold no FFT bin")
            if empty:
                raise ConfigError(f"features.n_mels={self.n_mels}: {empty} mel filter(s) would hold no FFT bin at "
                                  f"n_fft={self.n_fft} (bins {self.sample_rate / self.n_fft:g} Hz apart): use fewer "
                                  f"mels, a larger n_fft or a wider f_min..f_max")

    def mel_filterbank(self):
        """(n_fft // 2 + 1, n_mels) HTK mel filters, as the fbank and mfcc frontends apply them."""
        import warnings

        from torchaudio.functional import melscale_fbanks  # here: torch is not needed to read a config

        with warnings.catch_warnings():  # "filterbank has all zero values": refused by name in __post_init__
            warnings.simplefilter("ignore")
            return melscale_fbanks(n_freqs=self.n_fft // 2 + 1, f_min=self.f_min,
                                   f_max=self.f_max or self.sample_rate / 2, n_mels=self.n_mels,
                                   sample_rate=self.sample_rate, norm=None, mel_scale="htk")

    @property
    def dim(self) -> int:
        if self.kind == "fbank":
            return self.n_mels
        if self.kind == "mfcc":
            return self.n_mfcc
        return self.n_fft // 2 + 1


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # rnn_tanh | rnn_relu | lstm | gru
    bidirectional: bool = True
    num_layers: int = 3
    hidden_size: int = 320
    dropout: float = 0.1
    norm: str = "layer"  # normalization between recurrent layers: layer | batch | none
    subsampling: str = "conv"  # conv (DeepSpeech2-style 2-D convolutions) | stack (frame stacking)
    subsampling_factor: int = 4
    conv_channels: int = 32

    def __post_init__(self):
        _check_choice("model.cell", self.cell, ("rnn_tanh", "rnn_relu", "lstm", "gru"))
        _check_choice("model.norm", self.norm, ("layer", "batch", "none"))
        _check_choice("model.subsampling", self.subsampling, ("conv", "stack"))
        for name in ("num_layers", "hidden_size", "subsampling_factor", "conv_channels"):
            _check_at_least(f"model.{name}", getattr(self, name), 1)
        for name in ("hidden_size", "conv_channels"):  # a weight matrix of 65536**2 floats is 16 GiB already
            _check_at_most(f"model.{name}", getattr(self, name), 65536)
        for name in ("num_layers", "subsampling_factor"):
            _check_at_most(f"model.{name}", getattr(self, name), 1000)
        if self.subsampling == "conv" and self.subsampling_factor not in (1, 2, 4, 8):
            raise ConfigError(f"model.subsampling_factor must be 1, 2, 4 or 8 with model.subsampling=conv "
                              f"(any >= 1 with stack), got {self.subsampling_factor}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class AugmentConfig:
    # SpecAugment (Park et al. 2019); time mask width is a fraction of the utterance
    # length so that short utterances are not wiped out.
    freq_masks: int = 2
    freq_mask_width: int = 27
    time_masks: int = 2
    time_mask_fraction: float = 0.05
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    # Additive noise (asr/noise.py): with probability noise_prob an utterance gets noise at an
    # SNR drawn uniformly from noise_snr (low, high dB): recordings from noise_dir (e.g. MUSAN's
    # noise/), or without one, white/pink/brown noise. Off by default.
    noise_prob: float = 0.0
    noise_snr: tuple[float, ...] = (10.0, 30.0)
    noise_dir: str = ""

    def __post_init__(self):
        for name in ("freq_masks", "freq_mask_width", "time_masks"):
            _check_at_least(f"augment.{name}", getattr(self, name), 0)
            _check_at_most(f"augment.{name}", getattr(self, name), _LARGEST)
        if not 0.0 <= self.time_mask_fraction <= 1.0:
            raise ConfigError(f"augment.time_mask_fraction must be in [0, 1], got {self.time_mask_fraction}")
        if not self.speed_factors or not all(0 < f < math.inf for f in self.speed_factors):
            raise ConfigError(f"augment.speed_factors must be numbers > 0 (1.0: unchanged), "
                              f"got {list(self.speed_factors)}")
        if not 0.0 <= self.noise_prob <= 1.0:
            raise ConfigError(f"augment.noise_prob must be in [0, 1], got {self.noise_prob}")
        if len(self.noise_snr) != 2 or not all(map(math.isfinite, self.noise_snr)) \
                or self.noise_snr[0] > self.noise_snr[1]:
            raise ConfigError(f"augment.noise_snr must be [low, high] dB with low <= high, got {list(self.noise_snr)}")

    @property
    def enabled(self) -> bool:
        return self.freq_masks > 0 or self.time_masks > 0


@dataclass(frozen=True)
class TrainConfig:
    train_manifest: str = ""
    valid_manifest: str = ""
    output_dir: str = "exp/run"
    epochs: int = 30
    batch_seconds: float = 240.0  # audio seconds per batch (length-bucketed)
    max_batch_size: int = 64
    max_duration: float = 30.0  # longer training utterances are skipped and counted
    lr: float = 1.5e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    final_lr_fraction: float = 0.02  # cosine decay ends at lr * this
    grad_clip: float = 5.0
    sortagrad: bool = True  # first epoch in ascending length order
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # fp16 autocast + loss scaling, CUDA only
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0 = epoch ends only
    # Wall-clock budget for the run (0 = none): after each epoch the run re-plans how many of
    # train.epochs fit, and the learning-rate decay ends there (asr/schedule.py).
    time_budget_minutes: float = 0.0
    max_nan_steps: int = 5  # consecutive non-finite losses before the run stops
    valid_max_utts: int = 0  # 0 = whole valid manifest
    # Average the weights of the last N epochs (icefall's --avg) at the end; the average
    # replaces best/ if its valid WER is lower. 0 or 1 = off.
    average_last: int = 0
    # true: the average is best/ whatever valid says (a small valid set ranks single epochs by luck;
    # an average needs no ranking, as ESPnet's and NeMo's averaged final models)
    keep_average: bool = False
    # Weight noise (asr/weight_perturbation.py; Graves et al., 2013): each step's gradient is taken
    # at weights perturbed by N(0, std^2) and applied to the clean ones. 0 = off.
    weight_noise: float = 0.0
    # Weight drop (asr/weight_perturbation.py; DropConnect on the recurrent matrices W_h, as in
    # AWD-LSTM): each step drops this fraction of every W_h's connections, one mask for all time
    # steps of the batch. 0 = off.
    weight_drop: float = 0.0
    # Intermediate CTC (Lee & Watanabe, 2021): the CTC head also reads the output of recurrent
    # layer inter_ctc_layer (0 = the middle one, (num_layers + 1) // 2), and that loss is mixed
    # in at this weight. A regularizer for training only: parameters and inference are unchanged.
    inter_ctc_weight: float = 0.0
    inter_ctc_layer: int = 0
    # Auxiliary phone CTC (asr/phones.py): a head of its own on layer phone_ctc_layer (0 = the
    # middle one) learns the transcripts' phones from phone_lexicon ("cmudict" or a Kaldi-style
    # WORD PH1 PH2 ... file), mixed in at this weight. Training only, like intermediate CTC.
    phone_ctc_weight: float = 0.0
    phone_ctc_layer: int = 0
    phone_lexicon: str = "cmudict"
    # Confidence penalty (Pereyra et al., 2017): this weight times the entropy of each output
    # frame's distribution, summed over the utterance, is taken off its loss, so that CTC's
    # peaky, blank-dominated outputs stay less sure of themselves (the scores a beam search
    # mixes with an LM). On the final CTC head alone; training only. 0 = off.
    confidence_penalty: float = 0.0
    # Output units (asr/tokenizers.py): characters, sentencepiece BPE pieces within words, or
    # each word's phones from phone_lexicon; ``|`` between words. bpe_vocab_size is sentencepiece's
    # vocabulary (the model then has bpe_vocab_size + 1 outputs: its <unk> dropped, the CTC blank
    # and ``|`` added). 150 is the speechocean762 recipe's: 300-4,000 pieces gave better greedy WER
    # there but none gave better dev WER with the LM (recipes/speechocean762/README.md).
    units: str = "char"
    bpe_vocab_size: int = 150
    # BPE-dropout (Provilkov et al., 2020), subword units only: each training utterance's labels
    # are re-segmented every epoch with each BPE merge skipped at this probability. 0 = off.
    bpe_dropout: float = 0.0
    # Start from a trained model directory's weights, tokenizer and feature statistics (fine-tuning):
    # a new optimizer and schedule. Its features and model sections must equal this config's.
    init_from: str = ""
    # Decoded audio is kept in RAM as int16 with a scale per clip (asr.data.to_int16; ~11.5 GB per
    # 100 h per speed factor drawn); turn off for corpora larger than memory: audio is then decoded
    # at every step.
    cache_audio: bool = True
    progress: bool = True

    def __post_init__(self):
        # `not x > 0` also refuses NaN; torch would fail later, after the run directory is made. An
        # infinite rate makes the first update's weights NaN.
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"train.lr must be > 0 and finite, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"train.weight_decay must be >= 0 (0: none), got {self.weight_decay}")
        if not self.grad_clip > 0:  # 0 would zero every gradient, a negative one flip it
            raise ConfigError(f"train.grad_clip must be > 0 (the largest gradient norm), got {self.grad_clip}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ConfigError(f"train.final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
        if not self.max_duration > 0:
            raise ConfigError(f"train.max_duration must be > 0 (seconds), got {self.max_duration}")
        for name, least in (("warmup_steps", 0), ("checkpoint_every", 0), ("max_nan_steps", 1),
                            ("valid_max_utts", 0)):
            _check_at_least(f"train.{name}", getattr(self, name), least)
        if self.epochs < 1:  # 0 would end at once, with no best/ to use
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if not self.batch_seconds > 0:
            raise ConfigError(f"train.batch_seconds must be > 0, got {self.batch_seconds}")
        if self.max_batch_size < 1:
            raise ConfigError(f"train.max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.average_last < 0:
            raise ConfigError(f"train.average_last must be >= 0 (0: no average), got {self.average_last}")
        if self.keep_average and self.average_last < 2:
            raise ConfigError("train.keep_average=true keeps the average of the last epochs: give "
                              f"train.average_last=2 or more (got {self.average_last}: no average)")
        if self.threads < 0:  # would be ignored silently
            raise ConfigError(f"train.threads must be >= 0 (0: torch's default), got {self.threads}")


@dataclass(frozen=True)
class Config:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        t = self.train
        if not 0.0 <= t.inter_ctc_weight < 1.0:
            raise ConfigError("train.inter_ctc_weight must be in [0, 1)")
        if t.inter_ctc_weight and self.model.num_layers < 2:  # no layer below the last, whichever is named
            raise ConfigError(f"train.inter_ctc_weight={t.inter_ctc_weight:g}: intermediate CTC needs a layer below "
                              f"the last, and model.num_layers={self.model.num_layers}: give 2 or more layers")
        if t.inter_ctc_weight and not 1 <= self.inter_ctc_layer < self.model.num_layers:
            raise ConfigError(f"train.inter_ctc_layer={t.inter_ctc_layer}: intermediate CTC needs a layer "
                              f"below the last of model.num_layers={self.model.num_layers}")
        _check_choice("train.units", t.units, ("char", "bpe", "phone"))
        if t.units == "bpe" and t.bpe_vocab_size < 2:
            raise ConfigError("train.bpe_vocab_size must be >= 2")
        if not 0.0 <= t.bpe_dropout < 1.0:
            raise ConfigError("train.bpe_dropout must be in [0, 1)")
        if t.bpe_dropout and t.units != "bpe":
            raise ConfigError("train.bpe_dropout needs subword units (train.units=bpe)")
        if not 0 <= t.weight_noise < math.inf:
            raise ConfigError("train.weight_noise must be >= 0 (0: off)")
        if not 0 <= t.confidence_penalty < math.inf:
            raise ConfigError("train.confidence_penalty must be >= 0 (0: off)")
        if not 0.0 <= t.weight_drop < 1.0:
            raise ConfigError("train.weight_drop must be in [0, 1) (0: off)")
        if not t.time_budget_minutes >= 0:
            raise ConfigError("train.time_budget_minutes must be >= 0 (0: no budget)")
        for factor in self.augment.speed_factors:
            _check_speed_factor(factor, self.features.sample_rate)
        if not 0.0 <= t.phone_ctc_weight < 1.0:
            raise ConfigError("train.phone_ctc_weight must be in [0, 1)")
        if t.phone_ctc_weight and not 1 <= self.phone_ctc_layer <= self.model.num_layers:
            raise ConfigError(f"train.phone_ctc_layer={t.phone_ctc_layer}: phone CTC needs one of the "
                              f"model.num_layers={self.model.num_layers} layers")

    @property
    def inter_ctc_layer(self) -> int:
        """The recurrent layer (1-based) that intermediate CTC reads; 0 when it is off."""
        if not self.train.inter_ctc_weight:
            return 0
        return self.train.inter_ctc_layer or (self.model.num_layers + 1) // 2

    @property
    def phone_ctc_layer(self) -> int:
        """The recurrent layer (1-based) the phone head reads; 0 when phone CTC is off."""
        if not self.train.phone_ctc_weight:
            return 0
        return self.train.phone_ctc_layer or (self.model.num_layers + 1) // 2

    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))

    def replace(self, **sections) -> "Config":
        return dataclasses.replace(self, **sections)


def check_new_run(config: Config, resume: bool = False) -> None:
    """What a config file or override given to a command must hold, though a model directory's
    config.yaml, written before it was checked, may not (such a model still loads): asked by
    asr.config_files.load_config. ``resume``: a run that trained under the rules of its day goes on
    (only what would break it now is checked)."""
    f = config.features
    # above Nyquist the top filters are cut short or hold no bin; a model trained so still loads
    if not resume and f.f_max is not None and f.f_max > f.sample_rate / 2:
        raise ConfigError(f"features.f_max must be at most sample_rate / 2 ({f.sample_rate / 2:g}, the "
                          f"highest frequency sampled), got {f.f_max:g}")
    t = config.train
    if not t.output_dir.strip():  # "" is the current directory: a run would write its files there
        raise ConfigError("train.output_dir: expected the run's directory, got an empty value")
    # what torch.manual_seed takes (each step's seeds are derived modulo 2**64): a run of any seed
    # that trained before still resumes
    if not -2 ** 63 <= t.seed < 2 ** 64:
        raise ConfigError(f"train.seed must be in [-2**63, 2**64), as torch takes it, got {t.seed}")
    a = config.augment
    if not resume and a.noise_dir and not a.noise_prob:  # read only when noise is drawn: it would be ignored
        raise ConfigError(f"augment.noise_dir={a.noise_dir} adds no noise at augment.noise_prob=0: give "
                          f"augment.noise_prob (e.g. 0.5), or leave augment.noise_dir empty")
    if not resume:
        for name, problem in unused_settings(config):
            warn(name, problem)


def unused_settings(config: Config) -> list[tuple[str, str]]:
    """Settings given other than their defaults that nothing reads, as (name, why): a layer for a
    head whose weight is 0 trains no head, so a user who meant one would otherwise find out only
    from the model. Said, not refused: a recipe that names the phone lexicon still runs with the
    phone head turned off on its command line."""
    t, m, unused = config.train, config.model, []
    default_train, default_model = TrainConfig(), ModelConfig()
    if t.phone_ctc_layer != default_train.phone_ctc_layer and not t.phone_ctc_weight:
        unused.append((f"train.phone_ctc_layer={t.phone_ctc_layer}", "unused at train.phone_ctc_weight=0 "
                       "(no phone head): give train.phone_ctc_weight (e.g. 0.3) for one"))
    if (t.phone_lexicon != default_train.phone_lexicon and not t.phone_ctc_weight and t.units != "phone"):
        unused.append((f"train.phone_lexicon={t.phone_lexicon}", "unused: it spells the phone head's targets "
                       "(train.phone_ctc_weight, 0 here) or a phone model's (train.units=phone, "
                       f"{t.units} here)"))
    if t.inter_ctc_layer != default_train.inter_ctc_layer and not t.inter_ctc_weight:
        unused.append((f"train.inter_ctc_layer={t.inter_ctc_layer}", "unused at train.inter_ctc_weight=0 "
                       "(no intermediate CTC): give train.inter_ctc_weight (e.g. 0.3) for it"))
    if m.conv_channels != default_model.conv_channels and m.subsampling != "conv":
        unused.append((f"model.conv_channels={m.conv_channels}", f"unused with model.subsampling={m.subsampling} "
                       "(frame stacking has no convolutions): it sizes model.subsampling=conv's"))
    return unused


def perturbed_rate(sample_rate: int, factor: float) -> int:
    """Speed perturbation plays audio ``factor`` times faster: it is resampled as if recorded at
    this rate (asr.data.SpeechDataset.waveform)."""
    return round(sample_rate * factor)


# torchaudio's resampling filter has about p x q taps for a ratio p:q in lowest terms, built anew
# for every clip: 9:10 (Kaldi's 0.9 at 16 kHz) takes a millisecond per second of audio, 1013:1000
# 30 ms, 14619:16000 (0.9137) 24 s and 4.5 GB. Terms up to 200 admit every two-decimal factor
# at 8 or 16 kHz.
CHEAP_RATIO_TERMS = 200


def _ratio(rate: int, sample_rate: int) -> tuple[int, int]:
    gcd = math.gcd(rate, sample_rate)
    return rate // gcd, sample_rate // gcd


def _cheap(factor: float, sample_rate: int) -> bool:
    rate = perturbed_rate(sample_rate, factor)
    return rate >= 1 and max(_ratio(rate, sample_rate)) <= CHEAP_RATIO_TERMS


def _check_speed_factor(factor: float, sample_rate: int) -> None:
    if _cheap(factor, sample_rate):
        return
    # a two-decimal factor near it, as people write them; else the nearest cheap ratio
    near = [f for f in (round(factor, 2) + k / 100 for k in range(-5, 6)) if _cheap(f, sample_rate)]
    terms = range(1, CHEAP_RATIO_TERMS + 1)
    near = near or [p / q for q in terms if sample_rate % q == 0 for p in terms]
    nearby = round(min(near, key=lambda f: abs(f - factor)), 6)
    rate = perturbed_rate(sample_rate, factor)
    if rate < 1:
        problem = f"leaves no sample at features.sample_rate={sample_rate} (it rounds to {rate} Hz)"
    else:
        p, q = _ratio(rate, sample_rate)
        problem = (f"resamples {rate} Hz to features.sample_rate={sample_rate}, a ratio of {p}:{q} in lowest "
                   f"terms: a resampling filter of ~{p * q:,} taps for every clip, slow and memory-hungry (cheap "
                   f"ratios have terms up to {CHEAP_RATIO_TERMS}, as 0.9 at 16 kHz: 9:10)")
    raise ConfigError(f"augment.speed_factors: {factor:g} {problem}; use {nearby:g} instead")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")


def _check_at_least(name, value, least):
    if value < least:
        raise ConfigError(f"{name} must be >= {least}, got {value}")


# Sizes and counts beyond any real setting (a typo, a value meant for another key): beyond it torch
# overflows (a traceback), or a loop over them never ends, or memory runs out.
_LARGEST = 2 ** 20


def _check_at_most(name, value, most):
    if value > most:
        raise ConfigError(f"{name} must be at most {most}, got {value}")


def _to_plain(value):
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
