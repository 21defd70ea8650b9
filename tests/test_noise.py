"""Additive noise augmentation: the requested SNR is what the utterance gets, padding stays
silent, evaluation is untouched, and a noise folder is read (or refused) by name."""

import pytest
import soundfile as sf
import torch

from asr.config import AugmentConfig, ConfigError, FeatureConfig, ModelConfig
from asr.model import AcousticModel
from asr.noise import AddNoise, NoiseBank, NoiseError, coloured_noise
from conftest import write_sine

RATE = 16000


def speech_like_batch():
    """Two utterances of different lengths in one padded batch (the second padded with zeros)."""
    torch.manual_seed(0)
    t = torch.arange(RATE) / RATE
    a = 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 3 * t)
    b = torch.zeros(RATE)
    b[: RATE // 2] = 0.1 * torch.randn(RATE // 2)
    return torch.stack([a, b]), torch.tensor([RATE, RATE // 2])


def snr_db(clean, noisy, n):
    noise = noisy[:n] - clean[:n]
    return float(10 * torch.log10(clean[:n].pow(2).sum() / noise.pow(2).sum()))


def noise_on(cfg: AugmentConfig) -> AddNoise:
    return AddNoise(cfg, RATE).train()


@pytest.mark.parametrize("snr", [0.0, 12.5, 30.0])
def test_each_utterance_gets_noise_at_the_drawn_snr_over_its_own_length(snr):
    waves, lengths = speech_like_batch()
    noisy = noise_on(AugmentConfig(noise_prob=1.0, noise_snr=(snr, snr)))(waves, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert snr_db(waves[i], noisy[i], n) == pytest.approx(snr, abs=0.01)
    assert noisy[1, RATE // 2:].abs().max() == 0  # padding stays silent


def test_snrs_are_drawn_from_the_range_and_probability_decides_which_utterances():
    waves, lengths = speech_like_batch()
    waves, lengths = waves.repeat(50, 1), lengths.repeat(50)
    torch.manual_seed(1)
    noisy = noise_on(AugmentConfig(noise_prob=0.5, noise_snr=(5.0, 15.0)))(waves, lengths)
    changed = [i for i in range(100) if not torch.equal(noisy[i], waves[i])]
    assert 30 < len(changed) < 70
    snrs = [snr_db(waves[i], noisy[i], int(lengths[i])) for i in changed]
    assert 5.0 - 1e-3 <= min(snrs) and max(snrs) <= 15.0 + 1e-3 and max(snrs) - min(snrs) > 5


def test_evaluation_mode_probability_zero_and_silent_utterances_are_left_alone():
    waves, lengths = speech_like_batch()
    on = AugmentConfig(noise_prob=1.0)
    assert torch.equal(AddNoise(on, RATE).eval()(waves, lengths), waves)
    assert torch.equal(noise_on(AugmentConfig(noise_prob=0.0))(waves, lengths), waves)
    silent = torch.zeros(1, RATE)
    assert torch.equal(noise_on(on)(silent, torch.tensor([RATE])), silent)  # no SNR to reach: no NaN


def test_a_one_sample_utterance_is_left_alone_rather_than_made_nan():
    # coloured noise one sample long is its DC bin alone, which the low cut removes: no energy to scale
    torch.manual_seed(0)
    one = torch.tensor([[0.3]])
    assert torch.equal(noise_on(AugmentConfig(noise_prob=1.0))(one, torch.tensor([1])), one)


@pytest.mark.parametrize("exponent, octave_ratio", [(0.0, 2.0), (1.0, 1.0), (2.0, 0.5)])
def test_white_pink_and_brown_noise_have_their_spectral_slopes(exponent, octave_ratio):
    # Band power from 2-4 kHz over 1-2 kHz: white doubles (flat per Hz), pink stays (-3 dB per
    # octave per Hz), brown halves.
    torch.manual_seed(0)
    noise = coloured_noise(8, RATE, torch.full((8,), exponent), RATE)
    power = torch.fft.rfft(noise).abs().pow(2).mean(0)  # 1 Hz bins
    assert float(power[2000:4000].sum() / power[1000:2000].sum()) == pytest.approx(octave_ratio, rel=0.1)
    assert float(power[:20].sum()) < 1e-6 * float(power.sum())  # nothing below 20 Hz


def test_recorded_noise_comes_from_the_folder_resampled_and_cropped(tmp_path):
    write_sine(tmp_path / "noise" / "hum.flac", seconds=0.3, sample_rate=8000, freq=1000.0)
    aug = noise_on(AugmentConfig(noise_prob=1.0, noise_snr=(0.0, 0.0), noise_dir=str(tmp_path / "noise")))
    assert len(aug.bank.clips) == 1 and aug.bank.clips[0].numel() == int(0.3 * RATE)
    waves, lengths = speech_like_batch()
    added = aug(waves, lengths)[0] - waves[0]  # a 1 s utterance gets the 0.3 s clip repeated
    spectrum = torch.fft.rfft(added).abs()
    assert int(spectrum.argmax()) == pytest.approx(1000, abs=2)
    assert "1 recordings" in aug.describe() and "0-0 dB SNR" in aug.describe()


def test_a_silent_stretch_of_a_recording_adds_nothing_rather_than_nan(tmp_path):
    # MUSAN-like files can open with digital silence; a crop from it has no level to scale.
    clip = torch.zeros(RATE)
    clip[-10:] = 0.5
    (tmp_path / "noise").mkdir()
    sf.write(str(tmp_path / "noise" / "mostly_silent.wav"), clip.numpy(), RATE)
    aug = noise_on(AugmentConfig(noise_prob=1.0, noise_snr=(10.0, 10.0), noise_dir=str(tmp_path / "noise")))
    torch.manual_seed(0)
    waves, lengths = speech_like_batch()
    waves, lengths = waves[:, :200].repeat(20, 1), torch.full((40,), 200)
    noisy = aug(waves, lengths)
    assert torch.isfinite(noisy).all()
    assert any(torch.equal(noisy[i], waves[i]) for i in range(40))  # silent crops: left alone


def test_unreadable_or_silent_noise_files_are_skipped_by_name_and_an_empty_folder_is_refused(tmp_path):
    folder = tmp_path / "noise"
    write_sine(folder / "ok.wav", seconds=0.2)
    (folder / "broken.wav").write_bytes(b"not audio")
    write_sine(folder / "sub" / "silent.wav", seconds=0.2, freq=0.0)
    bank = NoiseBank.load(folder, RATE)
    assert len(bank.clips) == 1
    assert [(p.split("/")[-1], "silent" in r or "not readable" in r) for p, r in bank.skipped] == \
        [("broken.wav", True), ("silent.wav", True)]
    with pytest.raises(NoiseError, match="no usable audio files.*broken.wav"):
        NoiseBank.load(_only_broken(tmp_path), RATE)
    with pytest.raises(NoiseError, match="absent: not a directory"):
        NoiseBank.load(tmp_path / "absent", RATE)


def test_a_noise_folders_symlinked_subfolders_are_read_once_and_a_link_back_up_does_not_loop(tmp_path):
    # a folder of links to MUSAN's noise/ and one's own recordings: pathlib's rglob skipped the links
    write_sine(tmp_path / "musan" / "noise" / "free-sound" / "fan.wav", seconds=0.2, freq=300.0)
    write_sine(tmp_path / "mine" / "hum.flac", seconds=0.3)
    (tmp_path / "mine" / "musan").symlink_to(tmp_path / "musan" / "noise")
    (tmp_path / "mine" / "musan" / "free-sound" / "up").symlink_to(tmp_path / "mine")  # a cycle
    bank = NoiseBank.load(tmp_path / "mine", RATE)
    assert sorted(c.numel() for c in bank.clips) == [int(0.2 * RATE), int(0.3 * RATE)] and not bank.skipped


@pytest.mark.parametrize("link", ["a", "b", "k", "x"])
def test_a_folder_reached_both_directly_and_through_a_link_is_listed_by_its_own_path_whatever_the_link_s_name(
        tmp_path, link):
    # the folders os.walk lists come in the file system's order: the link was kept for some names,
    # and with it another list, and other noise for the same seed
    from asr.noise import _audio_files

    write_sine(tmp_path / "root" / "m" / "1.wav", seconds=0.1)
    write_sine(tmp_path / "root" / "z" / "2.wav", seconds=0.1)
    (tmp_path / "root" / link).symlink_to(tmp_path / "root" / "z")
    assert [p.relative_to(tmp_path / "root").as_posix() for p in _audio_files(tmp_path / "root")] == \
        ["m/1.wav", "z/2.wav"]


def _only_broken(tmp_path):
    folder = tmp_path / "broken_only"
    folder.mkdir()
    (folder / "broken.wav").write_bytes(b"not audio")
    return folder


@pytest.mark.parametrize("override, message", [
    ({"noise_prob": 1.5}, "augment.noise_prob must be in \\[0, 1\\], got 1.5"),
    ({"noise_snr": (20.0, 10.0)}, "augment.noise_snr must be \\[low, high\\] dB with low <= high"),
    ({"noise_snr": (10.0,)}, "augment.noise_snr must be \\[low, high\\]"),
])
def test_out_of_range_noise_settings_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message):
        AugmentConfig(**override)


def test_a_noise_dir_without_a_noise_probability_is_refused_rather_than_training_without_noise():
    from asr.config_files import load_config

    with pytest.raises(ConfigError, match=r"^augment\.noise_dir=musan/noise adds no noise at augment\.noise_prob=0"):
        load_config(None, ["augment.noise_dir=musan/noise"])
    assert load_config(None, ["augment.noise_dir=musan/noise", "augment.noise_prob=0.5"]).augment.noise_prob == 0.5


def test_noise_adds_nothing_to_the_model_weights():
    features, model = FeatureConfig(), ModelConfig(num_layers=1, hidden_size=16, conv_channels=4)
    plain = AcousticModel(features, model, 10)
    noisy = AcousticModel(features, model, 10, AugmentConfig(noise_prob=1.0))
    assert plain.state_dict().keys() == noisy.state_dict().keys()


def test_a_crop_starts_anywhere_in_the_recording_and_wraps_around_its_end():
    clip = torch.arange(1.0, 8.0)  # 7 samples, none zero
    bank = NoiseBank([clip])
    torch.manual_seed(0)
    for row in bank.crops(50, 17):
        start = int(row[0]) - 1
        assert torch.equal(row, clip[(start + torch.arange(17)) % 7])


def test_a_killed_run_with_recorded_noise_and_weight_noise_resumes_exactly(tiny_corpus, tmp_path):
    # Both draw from the generator reseeded at every step: (seed, step) fixes what each step adds.
    from test_train import assert_different_weights, assert_same_weights, straight_and_resumed, tiny_config
    from asr.train import train

    write_sine(tmp_path / "noise" / "hum.wav", seconds=0.7, sample_rate=8000, freq=300.0)
    write_sine(tmp_path / "noise" / "sub" / "whine.flac", seconds=2.5, freq=2500.0)
    extra = ["train.epochs=2", "train.checkpoint_every=2", "augment.noise_prob=0.7", "augment.noise_snr=[0,10]",
             f"augment.noise_dir={tmp_path / 'noise'}", "train.weight_noise=0.02"]
    straight, resumed = straight_and_resumed(tiny_corpus, tmp_path, *extra)
    assert_same_weights(straight, resumed)
    plain = train(tiny_config(tiny_corpus, tmp_path / "plain", *extra[:2]))
    assert_different_weights(straight, plain)
