"""Config files and overrides read as written: YAML 1.1's surprises (octal, dates, sexagesimal,
repeated keys) do not reach a config, and a mistake is named by key, file and a likely fix."""

from pathlib import Path

import pytest
import yaml

from asr.config import Config, ConfigError
from asr.config_files import load_config, save_config

CONFIG_FILES = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.y*ml"))


@pytest.mark.parametrize("override, expected", [
    ("train.output_dir=0755", "0755"),  # YAML 1.1: the octal number 493
    ("train.output_dir=2024-05-01", "2024-05-01"),  # YAML 1.1: a date, refused as not a string
    ("train.output_dir=1_000", "1_000"),  # YAML 1.1: 1000
    ("train.output_dir=1.10", "1.10"),  # YAML 1.1: 1.1
    ("train.output_dir=yes", "yes"),  # YAML 1.1: true, refused as not a string
    ("train.device=cuda:1", "cuda:1"),
])
def test_a_string_setting_keeps_its_text_as_written(override, expected):
    section, key = override.split("=")[0].split(".")
    assert getattr(getattr(load_config(None, [override]), section), key) == expected


def test_a_string_setting_in_a_file_keeps_its_text_as_written(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  output_dir: 0755\n  train_manifest: 2024-05-01\n")
    cfg = load_config(path)
    assert (cfg.train.output_dir, cfg.train.train_manifest) == ("0755", "2024-05-01")


@pytest.mark.parametrize("override, expected", [("model.num_layers=010", 10), ("train.seed=0700", 700)])
def test_an_integer_with_a_leading_zero_is_decimal_not_octal(override, expected):
    section, key = override.split("=")[0].split(".")
    assert getattr(getattr(load_config(None, [override]), section), key) == expected


@pytest.mark.parametrize("override", ["model.num_layers=0x3", "model.num_layers=0b11", "model.num_layers=1:30",
                                      "model.num_layers=1_0", "train.lr=1:30", "train.lr=1_0.5", "train.lr=nan"])
def test_yaml_11_number_spellings_other_than_decimal_are_refused_naming_the_field(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.") + ": expected"):
        load_config(None, [override])


@pytest.mark.parametrize("text, expected", [("true", True), ("False", False), ("yes", True), ("off", False),
                                            ("TRUE", True)])
def test_a_boolean_override_takes_true_false_yes_no_on_off_in_any_case(text, expected):
    assert load_config(None, [f"model.bidirectional={text}"]).model.bidirectional is expected


@pytest.mark.parametrize("text", ["1", "0", "y", "maybe", ""])
def test_a_boolean_override_refuses_other_words_naming_the_field(text):
    with pytest.raises(ConfigError, match=r"model\.bidirectional: expected true/false"):
        load_config(None, [f"model.bidirectional={text}"])


@pytest.mark.parametrize("text", ["0.9,1.0,1.1", "0.9, 1.0, 1.1", "[0.9, 1.0, 1.1]"])
def test_a_list_setting_takes_a_comma_separated_override_as_well_as_a_yaml_list(text):
    assert load_config(None, [f"augment.speed_factors={text}"]).augment.speed_factors == (0.9, 1.0, 1.1)


def test_an_override_value_may_hold_an_equals_sign_and_unicode():
    assert load_config(None, ["train.output_dir=exp/a=b/ünï cødé"]).train.output_dir == "exp/a=b/ünï cødé"


def test_the_last_of_repeated_overrides_wins():
    assert load_config(None, ["train.lr=1e-3", "train.lr=2e-3"]).train.lr == 2e-3


@pytest.mark.parametrize("override, expected", [("train.lr={1e-3}", "a number"), ("model.cell={gru}", "a string")])
def test_an_override_whose_value_is_a_mapping_is_refused_naming_it_not_dropped_for_the_files_value(override, expected):
    # `{1e-3}` is a YAML mapping (bash leaves a one-word brace as it is); the file's value was kept silently
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')}: expected {expected}, got \{{"):
        load_config(Path(__file__).resolve().parent.parent / "configs" / "small.yaml", [override])


def test_an_override_value_that_is_not_yaml_is_refused_naming_the_override():
    with pytest.raises(ConfigError, match=r"override 'train\.output_dir=\[a': not a YAML value") as info:
        load_config(None, ["train.output_dir=[a"])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override, suggestion", [("model.cel=gru", "cell"), ("modle.cell=gru", "model"),
                                                  ("train.learning_rat=1", None)])
def test_an_unknown_key_or_section_is_refused_with_the_closest_known_name(override, suggestion):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert message.startswith("unknown key(s)")
    assert (f"did you mean {suggestion}?" in message) if suggestion else "did you mean" not in message


def test_a_key_given_twice_in_a_config_file_is_refused_naming_the_file_key_and_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hidden_size: 256\n  cell: lstm\n  hidden_size: 512\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:4:3: the key 'hidden_size' is given twice (first on line 2)"


def test_a_section_given_twice_in_a_config_file_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.1\nmodel:\n  cell: gru\ntrain:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="'train' is given twice"):
        load_config(path)


def test_a_config_file_indented_with_tabs_is_refused_on_one_line_naming_the_file(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text("model:\n\tcell: gru\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2:1: found character '\\t' that cannot start any token"


@pytest.mark.parametrize("text, where, problem", [
    ("model: [unclosed\n", "2:1", "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at 1:8)"),
    ("model:\n  cell: gru\n  dropout\n  num_layers: 2\n", "4:3",
     "could not find expected ':' (while scanning a simple key at 3:3)"),
    ("train:\n  output_dir: \"exp/run\n", "3:1", "found unexpected end of stream (while scanning a quoted scalar "
                                                 "at 2:15)"),
    ("model:\n  cell: g\x01ru\n", "2:10", "unacceptable character #x0001: special characters are not allowed"),
])
def test_a_yaml_syntax_error_is_named_by_file_line_and_column_on_one_line_without_the_snippet(tmp_path, text, where,
                                                                                              problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:{where}: {problem}"  # no source line, no caret under it


def test_an_override_that_is_not_yaml_is_refused_with_the_problem_and_its_column_in_the_quoted_text():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.output_dir=[a"])
    # column 18 is the '[' of the quoted item, 20 just after its end
    assert str(info.value) == ("override 'train.output_dir=[a': not a YAML value at column 20: expected ',' or ']', "
                               "but got '<stream end>' (while parsing a flow sequence at column 18)")


def test_an_override_whose_quote_escapes_characters_is_placed_by_line_and_column_of_its_value():
    with pytest.raises(ConfigError) as info:  # the quote shows the tab as \t: its columns are not the item's
        load_config(None, ["train.output_dir=[a\tb"])
    assert str(info.value) == ("override 'train.output_dir=[a\\tb': not a YAML value at 1:3 of its value: "
                               "found character '\\t' that cannot start any token")


def test_a_config_file_with_a_list_at_the_top_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- train\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping of sections"):
        load_config(path)


@pytest.mark.parametrize("text, message", [
    ("model:\n  cel: gru\n", r"unknown key\(s\) in model: cel \(did you mean cell\?\)"),
    ("model:\n  num_layers: three\n", "model.num_layers: expected an integer"),
    ("model:\n  dropout: 1.5\n", r"model\.dropout must be in \[0, 1\)"),
])
def test_a_mistake_in_a_config_file_is_named_with_the_file(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/mine\.yaml: {message}"):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/mine\.yaml: {message}"):  # an override elsewhere
        load_config(path, ["train.epochs=2"])


def test_a_mistake_made_by_an_override_is_blamed_on_the_override_not_the_file(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("model:\n  cell: gru\n")
    with pytest.raises(ConfigError, match=r"^model\.dropout must be in \[0, 1\).*from the overrides "
                                          r"model\.dropout=1\.5 to .*good\.yaml"):
        load_config(path, ["model.dropout=1.5"])


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_shipped_config_with_overrides_round_trips_through_save_config(tmp_path, path):
    # what `asr train CONFIG key=value` saves in the run directory reloads as the same config
    cfg = load_config(path, ["train.output_dir=exp/0755", "augment.speed_factors=0.9,1.1", "features.f_max=7600",
                             "train.lr=3e-4", "train.time_budget_minutes=.inf"])
    saved = tmp_path / "config.yaml"
    save_config(cfg, saved)
    assert load_config(saved) == cfg
    assert yaml.safe_load(saved.read_text())["train"]["output_dir"] == "exp/0755"


def test_infinite_settings_round_trip_through_save_config(tmp_path):
    cfg = load_config(None, ["train.max_duration=.inf", "train.grad_clip=.inf"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg and cfg != Config()


# --- model directories --------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny untrained model saved in a folder whose path has a space and non-ASCII letters."""
    from asr.config import ModelConfig
    from asr.model import AcousticModel
    from asr.model_dir import save_model_dir
    from asr.text import CharTokenizer

    cfg = Config(model=ModelConfig(cell="gru", num_layers=2, hidden_size=16, conv_channels=4, dropout=0.0))
    tokenizer = CharTokenizer.build(["hello world"])
    return save_model_dir(tmp_path_factory.mktemp("models") / "my módel", cfg,
                          AcousticModel(cfg.features, cfg.model, len(tokenizer)), tokenizer)


@pytest.fixture
def broken(model_dir, tmp_path):
    """A copy of the model directory to break."""
    import shutil

    return Path(shutil.copytree(model_dir, tmp_path / "broken model"))


def _refused(path, problem):
    from asr.model_dir import ModelDirError, load_model_dir

    with pytest.raises(ModelDirError, match=problem) as info:
        load_model_dir(path)
    assert "\n" not in str(info.value)


def test_a_model_directory_loads_through_a_symlink_and_a_path_with_spaces(model_dir, tmp_path):
    from asr.model_dir import load_model_dir

    (tmp_path / "link to model").symlink_to(model_dir)
    assert load_model_dir(tmp_path / "link to model").config == load_model_dir(model_dir).config


def test_a_config_yaml_that_is_not_utf8_is_refused_naming_it(broken):
    (broken / "config.yaml").write_bytes(b"\xff\xfe model")
    _refused(broken, r"broken model/config\.yaml: not valid YAML: not UTF-8 text \(byte 0xff at position 0\)")


def test_a_config_yaml_with_a_key_given_twice_is_refused_not_read_as_its_last(broken):
    (broken / "config.yaml").write_text((broken / "config.yaml").read_text() + "model:\n  num_layers: 3\n")
    _refused(broken, r"broken model/config\.yaml:\d+:\d+: the key 'model' is given twice")


def test_a_config_yaml_with_a_key_this_version_does_not_know_is_refused_naming_it(broken):
    text = (broken / "config.yaml").read_text().replace("model:\n", "model:\n  attention: true\n")
    (broken / "config.yaml").write_text(text)
    _refused(broken, r"config\.yaml: unknown key\(s\) in model: attention \(a model from a newer asr\?\)")


def test_a_tokenizer_that_does_not_match_the_weights_output_size_is_blamed_by_name(broken):
    from asr.text import CharTokenizer

    CharTokenizer.build(["hello world, quite different"]).save(broken / "tokenizer.json")
    _refused(broken, r"model\.safetensors: weights for 9 output units, but tokenizer\.json has \d+")


def test_weights_that_do_not_fit_config_yaml_are_summed_up_on_one_line(broken):
    text = (broken / "config.yaml").read_text().replace("num_layers: 2", "num_layers: 3")
    (broken / "config.yaml").write_text(text)
    _refused(broken, r"model\.safetensors: weights do not fit config\.yaml: \d+ missing \(e\.g\. layers\.2\.")


def test_weights_holding_nan_are_refused_naming_the_tensor(broken):
    from safetensors.torch import load_file, save_file

    state = load_file(str(broken / "model.safetensors"))
    state["head.weight"][0, 0] = float("nan")
    save_file(state, str(broken / "model.safetensors"))
    _refused(broken, r"model\.safetensors: head\.weight holds NaN or infinite weights")


def test_truncated_weights_are_refused_naming_the_file(broken):
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _refused(broken, r"broken model/model\.safetensors: not readable weights")


@pytest.mark.parametrize("stats, problem", [
    ({"mean": [float("nan")] * 80, "std": [1.0] * 80}, "'mean' holds NaN or infinite values"),
    ({"mean": [0.0] * 80, "std": [0.0] * 80}, "'std' holds values <= 0"),
    ({"mean": [0.0] * 40, "std": [1.0] * 40}, "40 mean values for features of dimension 80"),
    ({"mean": [0.0] * 80, "std": [1.0]}, "1 std values for features of dimension 80"),  # was broadcast silently
    ({"mean": [0.0] * 80, "std": [1.0] * 3}, "3 std values for features of dimension 80"),
    ({"std": [1.0] * 80}, "'mean' must be a list of numbers"),
    ({"mean": ["a"] * 80, "std": [1.0] * 80}, "'mean' must be a list of numbers"),
    ([1, 2], "'mean' must be a list of numbers"),
])
def test_feature_statistics_that_would_garble_every_feature_are_refused_naming_cmvn_json(broken, stats, problem):
    import json

    (broken / "cmvn.json").write_text(json.dumps({"mode": "global", **stats} if isinstance(stats, dict) else stats))
    _refused(broken, r"broken model/cmvn\.json: " + problem.replace("(", r"\(").replace(")", r"\)"))


def test_a_cmvn_json_that_is_not_json_is_refused_naming_it(broken):
    (broken / "cmvn.json").write_bytes(b"\xff{")
    _refused(broken, r"cmvn\.json: unreadable feature statistics")


def test_a_config_file_may_share_settings_through_yaml_anchors_and_merge_keys(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("features: &f {n_mels: 40}\nmodel:\n  <<: {cell: gru, num_layers: 2}\n  num_layers: 4\n")
    cfg = load_config(path)
    assert (cfg.model.cell, cfg.model.num_layers, cfg.features.n_mels) == ("gru", 4, 40)


def test_a_list_used_as_a_key_is_refused_as_invalid_yaml_naming_the_file(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("model:\n  [cell]: gru\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2:3: found unhashable key"


def test_an_integer_setting_written_as_a_whole_float_in_exponent_form_is_read():
    # PyYAML reads 1.0e+2 as 100.0, which an integer field took before values were read as text
    from asr.config_files import load_config
    assert load_config(None, ["train.max_batch_size=1.0e+2"]).train.max_batch_size == 100


# --- found by the config defect hunt -------------------------------------------------------

@pytest.mark.parametrize("override", ["train.output_dir=", "train.output_dir=' '"])
def test_an_empty_output_dir_is_refused_naming_it_rather_than_training_into_the_current_directory(override):
    with pytest.raises(ConfigError, match=r"^train\.output_dir: .*empty"):
        load_config(None, [override])


def test_a_config_file_section_that_is_not_a_mapping_is_named_with_the_file_when_overrides_are_given(tmp_path):
    path = tmp_path / "scalar.yaml"
    path.write_text("model: lstm\n")
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/scalar\.yaml: model: expected a mapping, got 'lstm'$"):
        load_config(path, ["model.cell=gru"])


@pytest.mark.parametrize("seed", [str(-2 ** 63 - 1), str(2 ** 64), "99999999999999999999999"])
def test_a_seed_torch_cannot_take_is_refused_naming_it_before_training_overflows_torch(seed):
    with pytest.raises(ConfigError, match=rf"^train\.seed must be in \[-2\*\*63, 2\*\*64\), as torch takes it, "
                                          rf"got {seed}"):
        load_config(None, [f"train.seed={seed}"])


@pytest.mark.parametrize("seed", [-2 ** 63, -1, 0, 202405011200, 2 ** 64 - 1])
def test_every_seed_torch_takes_is_accepted_so_runs_made_with_it_still_resume(seed):
    assert load_config(None, [f"train.seed={seed}"]).train.seed == seed


@pytest.mark.parametrize("override, suggestion", [("train.LR=1e-3", "lr"), ("MODEL.cell=gru", "model")])
def test_an_unknown_key_that_differs_only_in_case_suggests_the_known_one(override, suggestion):
    with pytest.raises(ConfigError, match=rf"\(did you mean {suggestion}\?\)"):
        load_config(None, [override])


@pytest.mark.parametrize("text", ["None", "none", "NONE"])
def test_none_written_as_python_does_means_none_for_a_setting_that_may_be_none(text):
    assert load_config(None, ["features.f_max=8000", f"features.f_max={text}"]).features.f_max is None


def test_a_model_directory_trained_with_an_empty_output_dir_or_a_negative_seed_still_loads(broken):
    # such runs trained before load_config refused them: their models stay usable
    from asr.model_dir import load_model_dir

    path = broken / "config.yaml"
    text = path.read_text()
    path.write_text(text.replace("output_dir: exp/run", "output_dir: ''").replace("seed: 1234", "seed: -5"))
    assert path.read_text() != text
    loaded = load_model_dir(broken).config.train
    assert (loaded.output_dir, loaded.seed) == ("", -5)


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity"])
def test_infinity_spelled_as_python_does_is_refused_with_yamls_spelling(text):
    with pytest.raises(ConfigError, match=r"^train\.max_duration: expected a number, got '.*' \(YAML writes "
                                          r"infinity as \.inf"):
        load_config(None, [f"train.max_duration={text}"])
