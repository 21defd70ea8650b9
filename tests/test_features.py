"""Feature frontends agree with librosa and Kaldi, and padding never changes a feature."""

import dataclasses

import librosa
import numpy as np
import pytest
import torch
import torchaudio

from asr.config import AugmentConfig, FeatureConfig
from asr.features import FeatureExtractor, Frontend, Normalizer, SpecAugment, StatsAccumulator


def speechlike(seconds=1.0, rate=16000, seed=0):
    """A chirp plus noise: energy in many bins, so log features are well conditioned."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    chirp = np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return (0.3 * chirp + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def extract(cfg, signal):
    x = torch.from_numpy(signal)[None]
    feats, lengths = FeatureExtractor(cfg)(x, torch.tensor([x.shape[1]]))
    return feats[0, : lengths[0]].numpy()


def test_fbank_matches_librosa_htk_mel_spectrogram():
    cfg = FeatureConfig(kind="fbank", preemphasis=0.0)
    y = speechlike()
    ours = extract(cfg, y)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=80, fmin=20.0,
                                         fmax=8000.0, htk=True, norm=None, center=True, pad_mode="constant")
    ref = np.log(mel.T + 1e-6)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-3)


def test_mfcc_matches_librosa():
    cfg = FeatureConfig(kind="mfcc", preemphasis=0.0, n_mfcc=40)
    y = speechlike(seed=1)
    ours = extract(cfg, y)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=80, fmin=20.0,
                                         fmax=8000.0, htk=True, norm=None, center=True, pad_mode="constant")
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=40,
                               norm="ortho").T
    np.testing.assert_allclose(ours, ref, atol=2e-2, rtol=1e-3)


def test_linear_spectrogram_matches_librosa_stft():
    cfg = FeatureConfig(kind="spectrogram", preemphasis=0.0, n_fft=320)
    y = speechlike(seed=2)
    ours = extract(cfg, y)
    power = np.abs(librosa.stft(y, n_fft=320, hop_length=160, center=True, pad_mode="constant")) ** 2
    assert ours.shape[1] == cfg.dim == 161
    np.testing.assert_allclose(ours, np.log(power.T + 1e-6), atol=2e-3, rtol=1e-3)


def test_fbank_correlates_with_kaldi_fbank_on_the_same_frames():
    # Kaldi frames start at 0 (snip_edges); ours are centred. With a 200-sample window and a
    # 100-sample hop, Kaldi's frame k covers exactly the samples of our frame k + 1.
    cfg = FeatureConfig(kind="fbank", preemphasis=0.0, n_fft=200, hop_length=100, n_mels=40)
    y = speechlike(seed=3)
    ours = extract(cfg, y)
    kaldi = torchaudio.compliance.kaldi.fbank(
        torch.from_numpy(y)[None] * 32768, num_mel_bins=40, frame_length=12.5, frame_shift=6.25, dither=0.0,
        window_type="hanning", preemphasis_coefficient=0.0, remove_dc_offset=False, round_to_power_of_two=False,
        low_freq=20.0, high_freq=0.0, use_energy=False, snip_edges=True).numpy()
    ours = ours[1: 1 + kaldi.shape[0]] + np.log(32768.0 ** 2)  # Kaldi works on 16-bit sample values
    corr = np.corrcoef(ours.ravel(), kaldi.ravel())[0, 1]
    assert corr > 0.99
    assert np.median(np.abs(ours - kaldi)) < 0.3


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "spectrogram"])
def test_an_utterance_has_the_same_features_alone_and_padded_in_a_batch(kind):
    cfg = FeatureConfig(kind=kind)
    ext = FeatureExtractor(cfg)
    short, long = torch.from_numpy(speechlike(0.6)), torch.from_numpy(speechlike(1.3, seed=5))
    alone, n_alone = ext(short[None], torch.tensor([short.numel()]))
    batch = torch.zeros(2, long.numel())
    batch[0, : short.numel()], batch[1] = short, long
    together, n = ext(batch, torch.tensor([short.numel(), long.numel()]))
    assert n[0] == n_alone[0]
    torch.testing.assert_close(together[0, : n[0]], alone[0], atol=1e-4, rtol=1e-4)
    assert together[0, n[0]:].abs().max() == 0  # padding frames are zero


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "spectrogram"])
@pytest.mark.parametrize("batch", [1, 2])
def test_a_batch_of_zero_sample_clips_gets_the_frame_an_empty_clip_gets_beside_a_longer_one(kind, batch):
    # (B, 0) waves made torch.stft fail with "cannot reshape tensor of 0 elements"; a 0-length
    # clip padded in a batch gets output_lengths(0) = 1 frame, so one alone must get the same
    ext = FeatureExtractor(FeatureConfig(kind=kind))
    empty, n = ext(torch.zeros(batch, 0), torch.zeros(batch, dtype=torch.long))
    beside, n_beside = ext(torch.from_numpy(speechlike(0.5))[None].expand(2, -1).clone(), torch.tensor([0, 8000]))
    assert empty.shape == (batch, 1, ext.cfg.dim) and n.tolist() == [1] * batch == [n_beside[0].item()] * batch
    torch.testing.assert_close(empty, beside[:1, :1].expand(batch, -1, -1), atol=1e-4, rtol=1e-4)


def test_a_batch_of_no_waves_is_refused_saying_the_batch_is_empty():
    # MKL's FFT said "Inconsistent configuration parameters"
    with pytest.raises(ValueError, match="empty batch: 0 waves"):
        FeatureExtractor(FeatureConfig())(torch.zeros(0, 1600), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("preemphasis", [0.0, 0.97])
@pytest.mark.parametrize("padding", ["more audio", "NaN"])
def test_samples_past_an_utterances_length_never_reach_its_features(preemphasis, padding):
    # a batch need not be zero padded: a reused buffer, or a longer clip cut short by its length
    ext = FeatureExtractor(FeatureConfig(preemphasis=preemphasis))
    wave = torch.from_numpy(speechlike(1.0))
    alone, n_alone = ext(wave[None, :9000], torch.tensor([9000]))
    if padding == "NaN":
        wave[9000:] = float("nan")
    cut, n = ext(wave[None], torch.tensor([9000]))
    assert n[0] == n_alone[0]
    torch.testing.assert_close(cut[0, : n[0]], alone[0], atol=1e-5, rtol=1e-5)
    assert cut[0, n[0]:].abs().max() == 0


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_features_under_a_users_cpu_autocast_are_the_float32_ones(kind):
    # bf16 matmuls would lose the quiet bins (features 10 units off at -40 dBFS)
    ext = FeatureExtractor(FeatureConfig(kind=kind))
    x = torch.from_numpy(speechlike() * 0.01)[None]
    want, n = ext(x, torch.tensor([x.shape[1]]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = ext(x, torch.tensor([x.shape[1]]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


def test_global_statistics_equal_mean_and_std_of_all_valid_frames():
    feats = torch.randn(3, 10, 4) * 2 + 1
    lengths = torch.tensor([10, 6, 3])
    acc = StatsAccumulator(4)
    acc.add(feats, lengths)
    mean, std = acc.result()
    valid = torch.cat([feats[i, : lengths[i]] for i in range(3)])
    torch.testing.assert_close(mean, valid.mean(0))
    torch.testing.assert_close(std, valid.std(0, unbiased=False), rtol=1e-4, atol=1e-5)


def test_normalizer_statistics_round_trip_through_json(tmp_path):
    norm = Normalizer(3)
    norm.set_stats(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.0, 2.0]))
    norm.save(tmp_path / "cmvn.json")
    other = Normalizer(3)
    other.load(tmp_path / "cmvn.json")
    torch.testing.assert_close(other.mean, norm.mean)
    torch.testing.assert_close(other.std, norm.std)
    with pytest.raises(ValueError, match="cmvn.json"):
        Normalizer(4).load(tmp_path / "cmvn.json")


def test_utterance_normalization_gives_zero_mean_unit_variance_per_utterance():
    feats = torch.randn(2, 50, 8) * 3 + 5
    lengths = torch.tensor([50, 30])
    out = Normalizer(8, mode="utterance")(feats, lengths)
    valid = out[1, :30]
    assert valid.mean(0).abs().max() < 1e-4
    assert (valid.std(0, unbiased=False) - 1).abs().max() < 1e-3
    assert out[1, 30:].abs().max() == 0


def test_specaugment_fills_raw_features_masks_with_the_utterance_s_own_mean_and_leaves_padding_zero():
    # 0 is a neutral value only for normalized features: a raw log-mel of 0 is a loud band
    torch.manual_seed(0)
    feats, lengths = torch.randn(2, 60, 40) - 6.0, torch.tensor([60, 30])
    feats[1, 30:] = 0.0  # padding, as the frontend leaves it
    frontend = Frontend(FeatureConfig(normalize="none"),
                        AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_fraction=0.2))
    out = frontend.augment.train()(feats, lengths)
    changed = out != feats
    assert changed.any() and not changed[1, 30:].any() and (out[1, 30:] == 0).all()
    for b, n in enumerate(lengths.tolist()):
        mean = feats[b, :n].mean()
        torch.testing.assert_close(out[b][changed[b]], mean.expand(int(changed[b].sum())))


def test_specaugment_masks_only_in_training_and_only_inside_each_utterance():
    aug = SpecAugment(AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_fraction=0.2))
    feats = torch.ones(4, 100, 40)
    lengths = torch.tensor([100, 80, 50, 20])
    aug.eval()
    assert torch.equal(aug(feats, lengths), feats)
    aug.train()
    torch.manual_seed(0)
    out = aug(feats, lengths)
    assert (out == 0).any()
    masked_times = (out == 0).all(dim=2)  # whole frames zeroed by time masks
    for i, n in enumerate(lengths.tolist()):
        assert not masked_times[i, n:].any()  # time masks stay inside the utterance
        assert masked_times[i, :n].sum() <= 2 * (0.2 * n + 1)
    masked_bins = (out == 0).all(dim=1)
    assert masked_bins.sum(dim=1).max() <= 2 * 10


def test_frontend_applies_specaugment_only_in_training_mode():
    front = Frontend(FeatureConfig(), AugmentConfig(freq_masks=2, time_masks=2))
    wave = torch.from_numpy(speechlike())[None]
    n = torch.tensor([wave.shape[1]])
    front.eval()
    a, _ = front(wave, n)
    b, _ = front(wave, n)
    assert torch.equal(a, b)
    front.train()
    torch.manual_seed(1)
    c, _ = front(wave, n)
    assert not torch.equal(a, c)


def test_feature_config_rejects_unknown_kind():
    with pytest.raises(ValueError, match="features.kind"):
        dataclasses.replace(FeatureConfig(), kind="wavelets")


def test_integer_pcm_is_refused_rather_than_read_as_samples_32768_times_too_loud():
    extractor = FeatureExtractor(FeatureConfig())
    with pytest.raises(TypeError, match="not torch.int16 .*divide int16 PCM by 32768"):
        extractor(torch.zeros(1, 1600, dtype=torch.int16), torch.tensor([1600]))
