"""Typed configuration: YAML files, dotted overrides, strict validation."""

import re
from pathlib import Path

import pytest
import yaml

from asr.config import AugmentConfig, Config, ConfigError, FeatureConfig, ModelConfig, TrainConfig
from asr.config_files import load_config, parse_overrides, save_config

REPO_ROOT = Path(__file__).resolve().parent.parent

CONFIG_FILES = sorted((REPO_ROOT / "configs").glob("*.yaml")) + sorted((REPO_ROOT / "configs").glob("*.yml"))


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def config_file(tmp_path):
    return write_yaml(tmp_path / "config.yaml", {
        "features": {"kind": "mfcc", "n_mfcc": 13},
        "model": {"cell": "lstm", "num_layers": 2, "hidden_size": 64},
        "train": {"epochs": 3, "lr": 0.002},
    })


# --- loading ------------------------------------------------------------------------------

def test_load_config_reads_the_sections_of_a_yaml_file(config_file):
    cfg = load_config(config_file)
    assert cfg.features.kind == "mfcc" and cfg.features.n_mfcc == 13
    assert cfg.model.num_layers == 2 and cfg.model.hidden_size == 64
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.002


def test_a_float_written_in_exponent_form_without_a_dot_loads_as_a_number(tmp_path):
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string; the config must still take it as 0.001."""
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n  weight_decay: 5E-2\n")
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.weight_decay == pytest.approx(5e-2)


def test_load_config_keeps_defaults_for_keys_not_in_the_file(config_file):
    cfg = load_config(config_file)
    assert cfg.augment == AugmentConfig()
    assert cfg.model.dropout == ModelConfig().dropout
    assert cfg.train.seed == TrainConfig().seed


def test_load_config_without_a_file_gives_the_defaults():
    assert load_config() == Config()


def test_an_empty_yaml_file_gives_the_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()


def test_a_missing_config_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_config_path_that_is_a_pipe_is_refused_as_not_a_regular_file_not_as_missing(tmp_path):
    # `asr train <(envsubst < c.yaml)`: --gpus N reads the path again in every process, a pipe then empty
    import os

    pipe = tmp_path / "fifo"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=rf"^{pipe}: not a regular file \(a pipe or device\)"):
        load_config(pipe)


def test_invalid_yaml_raises_config_error_naming_the_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2:1: expected ',' or '\]'"):
        load_config(path)


def test_a_config_file_that_is_not_utf8_text_raises_config_error_naming_it(tmp_path):
    path = tmp_path / "speech.wav"  # an audio file given where the config goes
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00")
    with pytest.raises(ConfigError, match=r"speech\.wav: not valid YAML: not UTF-8"):
        load_config(path)


def test_a_section_that_is_not_a_mapping_raises_config_error(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"model": 3})
    with pytest.raises(ConfigError, match="model"):
        load_config(path)


# --- overrides ----------------------------------------------------------------------------

def test_overrides_are_applied_with_the_declared_types(config_file):
    cfg = load_config(config_file, ["train.lr=1e-3", "model.cell=gru"])
    assert cfg.model.cell == "gru"
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("override, section, key, expected", [
    ("train.lr=0.0005", "train", "lr", 0.0005),
    ("train.lr=1", "train", "lr", 1.0),  # an integer is accepted for a float field
    ("train.epochs=7", "train", "epochs", 7),
    ("train.epochs=7.0", "train", "epochs", 7),  # an integral float for an int field
    ("model.bidirectional=false", "model", "bidirectional", False),
    ("train.output_dir=exp/x", "train", "output_dir", "exp/x"),
    ("train.output_dir=123", "train", "output_dir", "123"),  # a number for a str field
    ("features.f_max=7600", "features", "f_max", 7600.0),
    ("features.f_max=null", "features", "f_max", None),
])
def test_override_values_are_coerced_to_the_field_type(override, section, key, expected):
    value = getattr(getattr(load_config(None, [override]), section), key)
    assert value == expected
    assert type(value) is type(expected)


def test_overrides_win_over_the_file_and_keep_its_other_keys(config_file):
    cfg = load_config(config_file, ["model.num_layers=4"])
    assert cfg.model.num_layers == 4
    assert cfg.model.hidden_size == 64


def test_a_tuple_field_is_parsed_from_a_yaml_list():
    cfg = load_config(None, ["augment.speed_factors=[0.9,1.0]"])
    assert cfg.augment.speed_factors == (0.9, 1.0)
    assert isinstance(cfg.augment.speed_factors, tuple)


def test_a_scalar_for_a_tuple_field_becomes_a_one_element_tuple():
    assert load_config(None, ["augment.speed_factors=1"]).augment.speed_factors == (1.0,)


def test_parse_overrides_builds_a_nested_dict_of_yaml_values_with_scalars_as_text():
    # scalars stay text until coerce reads them by the field's type (asr.config_files.read_yaml_text)
    assert parse_overrides(["train.lr=0.5", "model.cell=gru", "train.epochs=2", "augment.speed_factors=[1, 2]",
                            "features.f_max=null"]) == {
        "train": {"lr": "0.5", "epochs": "2"}, "model": {"cell": "gru"}, "augment": {"speed_factors": ["1", "2"]},
        "features": {"f_max": None}}


@pytest.mark.parametrize("override", ["train.lr", "lr=1", "train.lr.x=1", ".lr=1"])
def test_malformed_override_raises_config_error(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


# --- validation ---------------------------------------------------------------------------

def test_an_unknown_section_raises_config_error_naming_it():
    with pytest.raises(ConfigError, match="optimizer"):
        load_config(None, ["optimizer.lr=1"])


def test_an_unknown_key_raises_config_error_naming_it_and_its_section():
    with pytest.raises(ConfigError, match="train") as info:
        load_config(None, ["train.learning_rate=1"])
    assert "learning_rate" in str(info.value)


def test_an_unknown_key_in_a_file_raises_config_error_naming_it(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"model": {"celll": "gru"}})
    with pytest.raises(ConfigError, match="celll"):
        load_config(path)


@pytest.mark.parametrize("override, field", [
    ("model.num_layers=abc", "model.num_layers"),
    ("model.num_layers=2.5", "model.num_layers"),
    ("train.lr=fast", "train.lr"),
    ("train.lr=true", "train.lr"),
    ("model.bidirectional=1", "model.bidirectional"),
    ("train.device=[cpu]", "train.device"),
])
def test_a_value_of_the_wrong_type_raises_config_error_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(None, [override])


@pytest.mark.parametrize("override", ["model.cell=transformer", "model.norm=group", "features.kind=wav2vec",
                                      "features.normalize=sometimes", "model.subsampling=pool"])
def test_a_value_outside_the_allowed_choices_raises_config_error(override):
    with pytest.raises(ConfigError, match=override.split("=")[1]):
        load_config(None, [override])


@pytest.mark.parametrize("override", ["model.num_layers=0", "model.dropout=1.0", "model.subsampling_factor=3"])
def test_out_of_range_model_values_raise_config_error(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


@pytest.mark.parametrize("override, message", [
    ("model.num_layers=0", "model.num_layers must be >= 1, got 0"),
    ("model.hidden_size=-3", "model.hidden_size must be >= 1, got -3"),
    ("model.subsampling_factor=0", "model.subsampling_factor must be >= 1, got 0"),
    ("model.subsampling_factor=3", r"model.subsampling_factor must be 1, 2, 4 or 8 with model.subsampling=conv "
                                   r"\(any >= 1 with stack\), got 3"),
    ("model.dropout=-0.1", r"model.dropout must be in \[0, 1\), got -0.1"),
])
def test_an_out_of_range_model_value_is_named_alone_with_the_value_given(override, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        load_config(None, [override])


BEYOND_INT64 = "99999999999999999999"


@pytest.mark.parametrize("override, message", [
    # each of these made asr train print a traceback (torch overflowing) or run forever (a loop over them)
    (f"model.hidden_size={BEYOND_INT64}", f"model.hidden_size must be at most 65536, got {BEYOND_INT64}"),
    (f"model.conv_channels={BEYOND_INT64}", f"model.conv_channels must be at most 65536, got {BEYOND_INT64}"),
    (f"model.num_layers={BEYOND_INT64}", f"model.num_layers must be at most 1000, got {BEYOND_INT64}"),
    (f"features.n_mels={BEYOND_INT64}", f"features.n_mels must be at most 1048576, got {BEYOND_INT64}"),
    (f"augment.freq_masks={BEYOND_INT64}", f"augment.freq_masks must be at most 1048576, got {BEYOND_INT64}"),
])
def test_a_size_or_count_beyond_any_real_setting_is_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        load_config(None, [override])


def test_the_largest_sizes_allowed_are_accepted():
    cfg = load_config(None, ["model.hidden_size=65536", "model.num_layers=1000", "augment.freq_masks=1048576"])
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.augment.freq_masks) == (65536, 1000, 1048576)


def test_stacked_frames_take_any_subsampling_factor_of_at_least_one():
    assert load_config(None, ["model.subsampling=stack", "model.subsampling_factor=3"]).model.subsampling_factor == 3


@pytest.mark.parametrize("average_last", ["0", "1"])
def test_keeping_the_average_without_one_is_refused(average_last):
    with pytest.raises(ConfigError, match=r"train\.keep_average=true .* give train\.average_last=2 or more"):
        load_config(None, ["train.keep_average=true", f"train.average_last={average_last}"])


@pytest.mark.parametrize("override", ["train.lr=-1", "train.lr=0", "train.lr=.nan", "train.lr=.inf", "train.epochs=0",
                                      "train.batch_seconds=0", "train.max_batch_size=0", "train.threads=-1",
                                      "train.average_last=-1", "train.grad_clip=0", "train.grad_clip=-1",
                                      "train.weight_decay=-0.01", "train.warmup_steps=-1", "train.max_nan_steps=0",
                                      "train.final_lr_fraction=1.5", "train.max_duration=0",
                                      "train.checkpoint_every=-1", "train.valid_max_utts=-1"])
def test_out_of_range_training_values_raise_config_error_naming_the_field(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.") + " must be"):
        load_config(None, [override])


@pytest.mark.parametrize("override", [
    "features.sample_rate=0", "features.hop_length=0", "features.n_fft=0", "features.n_mels=0", "features.n_mfcc=0",
    "features.f_min=-1", "features.preemphasis=1.5", "model.conv_channels=0", "augment.freq_masks=-1",
    "augment.freq_mask_width=-1", "augment.time_masks=-1", "augment.time_mask_fraction=-0.1",
    "augment.time_mask_fraction=1.5", "augment.speed_factors=[0.9,0]", "augment.speed_factors=[-1.0]",
    "augment.speed_factors=[]", "augment.noise_snr=[.nan,30]"])
def test_impossible_feature_model_and_augmentation_values_raise_config_error_naming_the_field(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.") + " must be"):
        load_config(None, [override])


@pytest.mark.parametrize("overrides, message", [
    (["features.kind=mfcc", "features.n_mels=20", "features.n_mfcc=40"], "features.n_mfcc=40 must be at most "
                                                                         "features.n_mels=20"),
    (["features.f_min=4000", "features.f_max=3000"], r"features.f_min must be >= 0 and below features.f_max \(3000\)"),
    (["features.f_min=8000"], r"features.f_min must be >= 0 and below sample_rate / 2 \(8000\)"),
    (["features.n_fft=64", "features.hop_length=32", "features.n_mels=80"],
     "features.n_mels=80 is more than the 33 FFT bins of features.n_fft=64"),
    (["features.n_mels=1000000"], "features.n_mels=1000000 is more than the 201 FFT bins"),  # refused before it is built
    (["features.n_fft=256", "features.hop_length=128", "features.n_mels=100"],
     "features.n_mels=100: .* mel filter.s. would hold no FFT bin at n_fft=256"),
])
def test_feature_settings_that_contradict_each_other_raise_config_error_naming_them(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("f_max, message", [(".inf", "a finite frequency, got inf"),
                                            (".nan", "a finite frequency, got nan"),
                                            ("8001", "at most sample_rate / 2 (8000, ")])
def test_an_f_max_above_half_the_sample_rate_is_refused_naming_it_rather_than_making_nan_features(f_max, message):
    # .inf made every mel filter NaN, so every feature; 8001 blamed features.n_mels for filters past 8 kHz
    with pytest.raises(ConfigError, match="^features\\.f_max must be " + re.escape(message)):
        load_config(None, [f"features.f_max={f_max}"])
    assert load_config(None, ["features.f_max=8000"]).features.f_max == 8000  # the Nyquist frequency itself


def test_a_run_or_model_made_with_an_f_max_just_above_half_the_sample_rate_still_resumes_and_loads():
    # its top filters are cut short, not empty: it trained, and what trained goes on
    from asr.config_files import config_from_dict

    assert load_config(None, ["features.f_max=8100"], resume=True).features.f_max == 8100
    saved = load_config(None, resume=True, overrides=["features.f_max=8100"]).to_dict()
    assert config_from_dict(saved).features.f_max == 8100  # as a model directory's config.yaml is read
    with pytest.raises(ConfigError, match=r"features\.f_max=12000 is above sample_rate / 2 \(8000\): \d+ mel"):
        load_config(None, ["features.f_max=12000"], resume=True)  # filters with no bin at all: never trained


def test_a_run_with_a_noise_dir_and_no_noise_probability_still_resumes():
    # started before such a config was refused: its own command goes on with it
    config = load_config(None, ["augment.noise_dir=musan/noise"], resume=True)
    assert config.augment.noise_dir == "musan/noise" and config.augment.noise_prob == 0


def test_a_hop_longer_than_the_analysis_window_is_refused_naming_both_settings():
    # the samples between one window's end and the next one's start would never be read
    with pytest.raises(ConfigError, match=r"^features\.hop_length=480 is longer than features\.n_fft=400: .*"
                                          r"80 samples between windows"):
        load_config(None, ["features.hop_length=480"])
    assert load_config(None, ["features.hop_length=400"]).features.hop_length == 400  # windows that just touch


def test_an_empty_override_of_a_setting_that_may_be_none_means_none(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"features": {"f_max": 7600}})
    assert load_config(path, ["features.f_max="]).features.f_max is None  # as `f_max:` in the file


@pytest.mark.parametrize("override, expected", [("model.num_layers=", "an integer"), ("train.lr=", "a number"),
                                                ("model.bidirectional=", "true/false"),
                                                ("augment.speed_factors=", "a number")])
def test_an_empty_override_of_a_setting_that_cannot_be_none_is_refused_as_empty_naming_it(override, expected):
    with pytest.raises(ConfigError, match=f"^{override[:-1].replace('.', '[.]')}: expected {expected}, got an "
                                          f"empty value"):
        load_config(None, [override])


def test_an_empty_override_of_a_text_setting_is_the_empty_text():
    assert load_config(None, ["train.init_from=~/m", "train.init_from="]).train.init_from == ""


@pytest.mark.parametrize("factor, rate, ratio, nearby", [
    (0.9137, 16000, "14619:16000", "0.91"), (1.013, 16000, "1013:1000", "1.01"),
    (0.9, 11025, "9922:11025", None)])  # Kaldi's 0.9 at 11025 Hz rounds to 9922 Hz
def test_a_speed_factor_whose_resampling_ratio_does_not_reduce_is_refused_by_name_with_a_cheap_one_nearby(
        factor, rate, ratio, nearby):
    # torchaudio's filter for 14619:16000 takes 24 s and 4.5 GB per second of audio; for 9:10, a millisecond
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"augment.speed_factors=[1.0,{factor}]", f"features.sample_rate={rate}"])
    message = str(info.value)
    assert message.startswith(f"augment.speed_factors: {factor} resamples ") and ratio in message
    suggested = float(message.rsplit("use ", 1)[1].split()[0])
    assert abs(suggested - factor) <= 0.05 and (nearby is None or f"use {nearby} " in message)
    load_config(None, [f"augment.speed_factors=[1.0,{suggested}]", f"features.sample_rate={rate}"])


@pytest.mark.parametrize("factors, rate", [
    *[(f, rate) for f in ([0.8, 0.95, 1.05, 1.2], [0.91, 1.23, 1.99], [0.915]) for rate in (8000, 16000)],
    *[([0.9, 1.0, 1.1], rate) for rate in (8000, 16000, 22050, 44100, 48000)]])
def test_kaldis_speed_factors_and_any_of_two_decimals_at_8_or_16_khz_are_accepted(factors, rate):
    cfg = load_config(None, [f"augment.speed_factors={factors}", f"features.sample_rate={rate}",
                             "features.n_fft=2048"])  # enough FFT bins for 80 mels at any of these rates
    assert cfg.augment.speed_factors == tuple(factors)


def test_a_speed_factor_too_small_to_leave_a_sample_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"augment\.speed_factors: 1e-05 .*0 Hz.*use 0\.01 "):
        load_config(None, ["augment.speed_factors=[0.00001]"])


def test_a_tilde_in_a_path_setting_is_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(None, ["train.train_manifest=~/data/train.jsonl", "train.output_dir=~/exp/run",
                             "train.init_from=~/models/base", "train.phone_lexicon=~/lex.txt,cmudict",
                             "augment.noise_dir=~/musan/noise", "augment.noise_prob=0.5",
                             "train.valid_manifest=~/data/valid.jsonl"])
    assert cfg.train.train_manifest == f"{tmp_path}/data/train.jsonl"
    assert cfg.train.valid_manifest == f"{tmp_path}/data/valid.jsonl"
    assert cfg.train.output_dir == f"{tmp_path}/exp/run" and cfg.train.init_from == f"{tmp_path}/models/base"
    assert cfg.train.phone_lexicon == f"{tmp_path}/lex.txt,cmudict"
    assert cfg.augment.noise_dir == f"{tmp_path}/musan/noise"


def test_feature_dim_follows_the_feature_kind():
    assert FeatureConfig(kind="fbank", n_mels=64).dim == 64
    assert FeatureConfig(kind="mfcc", n_mfcc=13).dim == 13
    assert FeatureConfig(kind="spectrogram", n_fft=400).dim == 201


# --- saving -------------------------------------------------------------------------------

def test_a_config_round_trips_through_save_config_and_load_config(tmp_path):
    cfg = load_config(None, ["model.cell=gru", "augment.speed_factors=[0.95,1.05]", "features.f_max=7600",
                             "train.lr=0.0003", "train.output_dir=exp/roundtrip", "model.bidirectional=false"])
    path = tmp_path / "saved.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg


def test_a_save_config_killed_before_it_finishes_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import os

    path = tmp_path / "config.yaml"
    save_config(Config(), path)
    before = path.read_text()

    def killed(src, dst):  # the process dies just before the new file takes the old one's place
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_config(load_config(None, ["model.cell=gru"]), path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_the_default_config_round_trips_through_save_config(tmp_path):
    path = tmp_path / "default.yaml"
    save_config(Config(), path)
    assert load_config(path) == Config()


def test_saved_config_is_plain_yaml_with_lists_for_tuples(tmp_path):
    path = tmp_path / "saved.yaml"
    save_config(Config(), path)
    data = yaml.safe_load(path.read_text())
    assert set(data) == {"features", "model", "augment", "train"}
    assert data["augment"]["speed_factors"] == [0.9, 1.0, 1.1]


# --- the shipped configs ------------------------------------------------------------------

def test_the_repository_has_config_files():
    assert CONFIG_FILES, "no YAML files in configs/"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_intermediate_ctc_reads_the_middle_layer_unless_told_and_must_be_below_the_top():
    assert load_config("configs/small.yaml", ["train.inter_ctc_weight=0.3"]).inter_ctc_layer == 2
    assert load_config("configs/small.yaml", ["train.inter_ctc_weight=0.3",
                                              "train.inter_ctc_layer=1"]).inter_ctc_layer == 1
    assert load_config("configs/small.yaml", ["train.inter_ctc_layer=1"]).inter_ctc_layer == 0  # weight 0: off
    with pytest.raises(ConfigError, match="inter_ctc_layer=3"):
        load_config("configs/small.yaml", ["train.inter_ctc_weight=0.3", "train.inter_ctc_layer=3"])
    with pytest.raises(ConfigError, match="inter_ctc_weight"):
        load_config("configs/small.yaml", ["train.inter_ctc_weight=1.0"])
    # one layer has none below it: said so, not as the layer 0 (the middle) the user never gave
    with pytest.raises(ConfigError, match=r"^train.inter_ctc_weight=0.3: intermediate CTC needs a layer below the "
                                          r"last, and model.num_layers=1: give 2 or more layers"):
        load_config("configs/small.yaml", ["train.inter_ctc_weight=0.3", "model.num_layers=1"])


def test_phone_ctc_reads_the_middle_layer_unless_told_and_only_layers_that_exist():
    assert load_config("configs/small.yaml", ["train.phone_ctc_weight=0.3"]).phone_ctc_layer == 2
    assert load_config("configs/small.yaml", ["train.phone_ctc_weight=0.3",
                                              "train.phone_ctc_layer=3"]).phone_ctc_layer == 3  # the top: allowed
    assert load_config("configs/small.yaml", ["train.phone_ctc_layer=1"]).phone_ctc_layer == 0  # weight 0: off
    with pytest.raises(ConfigError, match="phone_ctc_layer=4"):
        load_config("configs/small.yaml", ["train.phone_ctc_weight=0.3", "train.phone_ctc_layer=4"])
    with pytest.raises(ConfigError, match="phone_ctc_weight"):
        load_config("configs/small.yaml", ["train.phone_ctc_weight=-0.1"])


@pytest.mark.parametrize("overrides, named", [
    (["train.phone_ctc_layer=2"], "train.phone_ctc_layer=2: unused at train.phone_ctc_weight=0"),
    (["train.phone_lexicon=my/lexicon.txt"], "train.phone_lexicon=my/lexicon.txt: unused: it spells"),
    (["train.inter_ctc_layer=3"], "train.inter_ctc_layer=3: unused at train.inter_ctc_weight=0"),
    (["model.subsampling=stack", "model.conv_channels=64"], "model.conv_channels=64: unused with "
                                                            "model.subsampling=stack"),
])
def test_a_setting_that_nothing_reads_is_named_on_stderr_but_the_run_still_starts(overrides, named, capsys):
    # a layer given for a head whose weight is 0 trains no head: said at once, not found in the model
    assert load_config(None, overrides)
    assert f"asr: warning: {named}" in capsys.readouterr().err


@pytest.mark.parametrize("overrides", [
    ["train.phone_ctc_weight=0.3", "train.phone_ctc_layer=1", "train.phone_lexicon=my/lex2.txt"],
    ["train.units=phone", "train.phone_lexicon=my/lex3.txt"],
    ["train.inter_ctc_weight=0.3", "train.inter_ctc_layer=2"],
    ["model.conv_channels=48"],
    ["model.subsampling=stack", "model.conv_channels=32"],  # the default, whether written or not
])
def test_settings_that_are_read_draw_no_warning(overrides, capsys):
    assert load_config(None, overrides)
    assert "warning" not in capsys.readouterr().err


def test_a_run_that_goes_on_is_not_warned_again_about_settings_it_started_with(capsys):
    assert load_config(None, ["train.inter_ctc_layer=2"], resume=True).train.inter_ctc_layer == 2
    assert "warning" not in capsys.readouterr().err
