"""The unrolled-network diagram and the per-layer summary, read off a real model."""

import re

import pytest
import torch
from matplotlib.image import imread

import asr.diagram_text
from asr.cli import main
from asr.config_files import load_config
from asr.diagram_text import layer_rows
from asr.model import AcousticModel
from asr.model_dir import load_model_dir
from conftest import REPO_ROOT


def svg_texts(path) -> list[str]:
    """The text elements of an SVG (the diagram keeps its labels as text)."""
    return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())


def svg_text(path) -> str:
    return " ".join(svg_texts(path))


def test_diagram_of_a_two_layer_bidirectional_gru_shows_both_directions_and_the_parameter_counts(
        tiny_model_dir, tmp_path, capsys):
    model = load_model_dir(tiny_model_dir).model
    assert main(["diagram", "--model", str(tiny_model_dir), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert "2 × 16 bidirectional GRU" in text
    assert f"{model.num_parameters():,} parameters" in text
    assert text.count("forward: h(t-1) → h(t)") == 2 and text.count("backward: h(t+1) → h(t)") == 2
    for i, layer in enumerate(model.layers, 1):
        assert f"layer {i}" in text
        assert f"{sum(p.numel() for p in layer.parameters()):,} params" in text
        assert f"{sum(p.numel() for p in layer.backward_rnn.parameters()):,} params" in text
    assert f"{sum(p.numel() for p in model.head.parameters()):,} params" in text
    assert str(tmp_path / "net.svg") in capsys.readouterr().out


def test_a_unidirectional_network_has_no_backward_chain(tmp_path):
    cfg = tmp_path / "uni.yaml"
    cfg.write_text("model:\n  cell: rnn_tanh\n  bidirectional: false\n  num_layers: 1\n  hidden_size: 8\n"
                   "  conv_channels: 2\n")
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert "recurrence: h(t-1) → h(t)" in text and "backward" not in text and "RNN (tanh)" in text


def test_png_by_suffix_and_a_deeper_network_draws_taller(tmp_path):
    sizes = []
    for layers in (1, 3):
        out = tmp_path / f"net{layers}.png"
        assert main(["diagram", "--config", str(_config(tmp_path, layers)), "-o", str(out)]) == 0
        image = imread(out)
        assert image[..., :3].std() > 0.05
        sizes.append(image.shape[:2])
    assert sizes[1][0] > sizes[0][0] and sizes[1][1] == sizes[0][1]


def _config(tmp_path, layers):
    path = tmp_path / f"c{layers}.yaml"
    path.write_text(f"model:\n  num_layers: {layers}\n  hidden_size: 8\n  conv_channels: 2\n")
    return path


def test_summary_rows_add_up_to_the_model_total_with_the_real_output_shapes(tiny_model_dir):
    model = load_model_dir(tiny_model_dir).model
    rows = layer_rows(model, seconds=1.0)
    blocks = [r for r in rows if r.depth == 0]
    assert [r.name for r in blocks] == ["features", "subsampling", "layer 1", "layer 2", "CTC head"]
    assert sum(r.params for r in blocks) == model.num_parameters()
    log_probs, _ = model(torch.zeros(1, 16000), torch.tensor([16000]))
    assert blocks[-1].shape == tuple(log_probs.shape)
    assert blocks[0].shape == (1, 16000 // 160 + 1, 80)
    forward = next(r for r in rows if r.name == "forward")
    assert forward.shape == (1, log_probs.shape[1], 16) and forward.depth == 1


def test_summary_command_prints_the_total_of_the_model_built_from_a_config(capsys):
    assert main(["summary", "--config", str(REPO_ROOT / "configs" / "small.yaml"), "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    cfg = load_config(REPO_ROOT / "configs" / "small.yaml")
    total = AcousticModel(cfg.features, cfg.model, 29).num_parameters()
    assert re.search(rf"^total\s+{total:,}$", out, re.M)
    assert "(1, 201, 80)" in out  # 2 s of 10 ms frames


def test_a_config_with_subword_units_is_drawn_with_as_many_outputs_as_pieces_asked_for(tmp_path, capsys):
    cfg = tmp_path / "bpe.yaml"
    cfg.write_text("model:\n  num_layers: 1\n  hidden_size: 8\n  conv_channels: 2\n"
                   "train:\n  units: bpe\n  bpe_vocab_size: 150\n")
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "net.svg")]) == 0
    assert "151 tokens" in svg_text(tmp_path / "net.svg")
    cfg.write_text(cfg.read_text().replace("units: bpe", "units: phone"))
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "phones.svg")]) == 0
    assert "41 tokens" in svg_text(tmp_path / "phones.svg")  # blank, | and cmudict's 39 phones


def test_without_a_model_or_a_packaged_default_the_error_says_what_to_pass(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(asr.diagram_text, "PRETRAINED_DIR", tmp_path / "absent")
    assert main(["summary"]) == 2
    assert "--model DIR or --config" in capsys.readouterr().err


def test_many_layers_are_drawn_first_two_then_the_last(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("model:\n  num_layers: 8\n  hidden_size: 4\n  conv_channels: 2\n  bidirectional: false\n")
    assert main(["diagram", "--config", str(path), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert "layers 3-7" in text and "layer 8" in text and "layer 3 " not in text


@pytest.mark.parametrize("bad", ["net.jpg", "net"])
def test_an_unknown_image_format_is_refused(tmp_path, capsys, bad):
    assert main(["diagram", "--config", str(_config(tmp_path, 1)), "-o", str(tmp_path / bad)]) == 2
    assert "unsupported" in capsys.readouterr().err


@pytest.mark.parametrize("argv, problem", [
    (["summary", "--config", "configs/small.yaml", "--seconds", "1e5"], "--seconds must be at most 600"),
    (["summary", "--model", "MODEL", "--vocab-size", "5"], "--vocab-size is for --config"),
    (["summary", "--config", "configs"], "configs: a directory, not a config file"),
    (["summary", "--model", "configs/small.yaml"], "configs/small.yaml: a file, not a model directory"),
])
def test_summary_and_diagram_refuse_what_they_cannot_draw_by_name(tiny_model_dir, argv, problem, capsys):
    argv = [str(tiny_model_dir) if a == "MODEL" else a for a in argv]
    assert main(argv) == 2
    assert problem in capsys.readouterr().err


# --- a package that rescores: a first system at its root, the others in systemN/ ---------------

@pytest.fixture
def rescoring_package(tiny_model_dir, tmp_path):
    """tiny_model_dir as the first system and a 1-layer unidirectional RNN as system2, as
    `asr export RESCORING_FILE DIR` lays them out."""
    import shutil

    from asr.config import Config, ModelConfig
    from asr.model_dir import save_model_dir

    package = tmp_path / "package"
    shutil.copytree(tiny_model_dir, package)
    first = load_model_dir(package)
    cfg = Config(model=ModelConfig(cell="rnn_tanh", bidirectional=False, num_layers=1, hidden_size=8,
                                   conv_channels=2, dropout=0.0))
    save_model_dir(package / "system2", cfg, AcousticModel(cfg.features, cfg.model, len(first.tokenizer)),
                   first.tokenizer)
    (package / "rescoring.yaml").write_text("models: [., system2]\nweights: [1.0, 0.5]\nlm_weight: 1.0\n"
                                            "word_score: 0.0\n")
    return package


def test_summary_of_a_package_that_rescores_shows_every_system_then_their_total(rescoring_package, capsys):
    assert main(["summary", "--model", str(rescoring_package)]) == 0
    out = capsys.readouterr().out
    totals = [load_model_dir(p).model.num_parameters() for p in (rescoring_package, rescoring_package / "system2")]
    assert out.startswith(f"{rescoring_package}\na package that rescores n-best lists with 2 systems")
    assert re.search(r"^system 1 of 2 \(\./\): 2 x 16 bidirectional GRU", out, re.M)
    assert re.search(r"^system 2 of 2 \(system2/\): 1 x 8 unidirectional RNN \(tanh\)", out, re.M)
    assert out.index("2 x 16 bidirectional GRU") < out.index("1 x 8 unidirectional RNN (tanh)")
    for total in totals:  # each system's own table ends in its total
        assert re.search(rf"^total\s+{total:,}$", out, re.M)
    assert re.search(rf"^total of the 2 systems\s+{sum(totals):,}$", out, re.M)


def test_diagram_of_a_package_that_rescores_draws_every_system_one_above_the_other(rescoring_package, tmp_path,
                                                                                  capsys):
    assert main(["diagram", "--model", str(rescoring_package), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    first, second = (load_model_dir(p).model for p in (rescoring_package, rescoring_package / "system2"))
    assert str(rescoring_package) in text and "with 2 systems" in text
    assert "system 1 of 2 (./): 2 × 16 bidirectional GRU" in text
    assert "system 2 of 2 (system2/): 1 × 8 unidirectional RNN (tanh)" in text
    assert f"{first.num_parameters():,} parameters" in text and f"{second.num_parameters():,} parameters" in text
    assert text.count("output y(t)") == 2
    assert str(tmp_path / "net.svg") in capsys.readouterr().out


def test_a_package_s_single_system_is_drawn_alone_when_asked_for_by_its_directory(rescoring_package, tmp_path):
    assert main(["summary", "--model", str(rescoring_package / "system2")]) == 0
    assert main(["diagram", "--model", str(rescoring_package / "system2"), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert "1 × 8 unidirectional RNN (tanh)" in text and "GRU" not in text and "system 1 of" not in text


def test_summary_of_the_built_in_package_shows_all_of_its_systems(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    systems = sorted(p for p in (REPO_ROOT / "asr" / "pretrained" / "default").glob("system*"))
    n = len(systems) + 1
    assert n > 1 and re.search(rf"^system {n} of {n} \({systems[-1].name}/\): ", out, re.M)
    assert re.search(rf"^total of the {n} systems\s+[\d,]+$", out, re.M)


# --- what the picture says is what the model computes ---------------------------------------

def _write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("subsampling, factor", [("conv", 1), ("conv", 2), ("conv", 4), ("conv", 8), ("stack", 4)])
def test_the_frames_a_step_is_said_to_see_are_the_ones_its_output_depends_on(subsampling, factor):
    from asr.config import FeatureConfig, ModelConfig

    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(subsampling=subsampling, subsampling_factor=factor,
                                                       conv_channels=8, hidden_size=8, num_layers=1), 29)
    feats = torch.randn(1, 40, 80, requires_grad=True)
    out, _ = model.subsampling(feats, torch.tensor([40]))
    for step in range(4):
        grad, = torch.autograd.grad(out[0, step].sum(), feats, retain_graph=True)
        used = (grad[0].abs().sum(-1) > 0).nonzero().flatten()
        assert model.subsampling.input_frames(step) == (int(used.min()), int(used.max()))


def test_each_step_is_labelled_with_the_overlapping_frames_its_convolutions_see(tmp_path):
    assert main(["diagram", "--config", str(REPO_ROOT / "configs" / "small.yaml"), "-o", str(tmp_path / "s.svg")]) == 0
    texts = svg_texts(tmp_path / "s.svg")
    assert [t for t in texts if t.startswith("frames ")] == ["frames 1-4", "frames 2-8", "frames 6-12", "frames 10-16"]
    assert "a step every 4 frames (40 ms), each seeing 7 frames: the windows overlap" in texts
    cfg = _write(tmp_path, "model:\n  subsampling: stack\n  num_layers: 1\n  hidden_size: 8\n")
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "stack.svg")]) == 0
    texts = svg_texts(tmp_path / "stack.svg")
    assert [t for t in texts if t.startswith("frames ")] == ["frames 1-4", "frames 5-8", "frames 9-12", "frames 13-16"]


@pytest.mark.parametrize("cell, equations", [
    ("rnn_tanh", ["h(t) = tanh(W_x x(t) + b_x + W_h h(t-1) + b_h)"]),
    ("rnn_relu", ["h(t) = ReLU(W_x x(t) + b_x + W_h h(t-1) + b_h)"]),
    ("lstm", ["i = σ(W_xi x(t) + b_xi + W_hi h(t-1) + b_hi)", "g = tanh(W_xg x(t) + b_xg + W_hg h(t-1) + b_hg)",
              "c(t) = f ⊙ c(t-1) + i ⊙ g", "h(t) = o ⊙ tanh(c(t))"]),
    ("gru", ["r = σ(W_xr x(t) + b_xr + W_hr h(t-1) + b_hr)", "n = tanh(W_xn x(t) + b_xn + r ⊙ (W_hn h(t-1) + b_hn))",
             "h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)"]),
])
def test_the_picture_states_the_cell_s_equations_and_the_output_layer(tmp_path, cell, equations):
    cfg = _write(tmp_path, f"model:\n  cell: {cell}\n  num_layers: 2\n  hidden_size: 8\n  conv_channels: 2\n")
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    for equation in equations:
        assert equation in text
    # the head (asr/model.py): linear + log-softmax over the top layer's normalized concatenation
    assert "y(t) = log_softmax(W_y u(t) + b_y) over the 29 tokens, with u(t) of layer 2" in text
    assert "u(t) = LayerNorm([→h(t); ←h(t)]), then dropout" in text
    assert ("c(t-1) → c(t)" in text) == (cell == "lstm")  # the cell state's own recurrence, drawn


def test_the_weights_are_named_on_their_arrows_and_each_direction_s_states_by_their_direction(tiny_model_dir,
                                                                                                 tmp_path):
    assert main(["diagram", "--model", str(tiny_model_dir), "-o", str(tmp_path / "net.svg")]) == 0
    texts = svg_texts(tmp_path / "net.svg")
    assert texts.count("W_x") == 4 and texts.count("W_h") == 4 and texts.count("W_y") == 1  # 2 layers x 2 chains
    assert texts.count("→h(1)") == 2 and texts.count("←h(4)") == 2 and "h(1)" not in texts


def test_features_and_the_steps_after_subsampling_have_their_own_names(tiny_model_dir, tmp_path):
    assert main(["diagram", "--model", str(tiny_model_dir), "-o", str(tmp_path / "net.svg")]) == 0
    texts = svg_texts(tmp_path / "net.svg")
    assert "features" in texts and "input x(t)" not in texts
    assert [t for t in texts if re.fullmatch(r"x\(\d\)", t)] == ["x(1)", "x(2)", "x(3)", "x(4)"]


def test_a_phone_model_has_as_many_tokens_as_its_lexicon_has_phones_plus_blank_and_separator(tmp_path, capsys):
    lexicon = _write(tmp_path, "HELLO HH AH0 L OW1\nWORLD W ER1 L D\n", "lexicon.txt")
    cfg = _write(tmp_path, f"model:\n  num_layers: 1\n  hidden_size: 8\n  conv_channels: 2\n"
                           f"train:\n  units: phone\n  phone_lexicon: {lexicon}\n")
    from asr.tokenizers import build_tokenizer

    tokens = len(build_tokenizer("phone", ["hello world"], phone_lexicon=lexicon))  # as training builds it
    assert tokens == 9  # blank, | and HH AH L OW W ER D
    assert main(["summary", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f", {tokens} tokens," in out.splitlines()[0]
    assert re.search(rf"^CTC head\s.*linear 16 -> {tokens}", out, re.M)


def test_a_config_s_character_count_is_said_to_be_an_assumption(tmp_path, capsys):
    assert main(["summary", "--config", str(_config(tmp_path, 1))]) == 0
    assert "note: 29 tokens assumed" in capsys.readouterr().out


def test_training_only_heads_of_a_config_are_shown_with_their_parameters(tmp_path, capsys):
    from asr.train_setup import attach_phone_head

    lexicon = _write(tmp_path, "HELLO HH AH0 L OW1\nWORLD W ER1 L D\n", "lexicon.txt")
    cfg = _write(tmp_path, f"model:\n  num_layers: 3\n  hidden_size: 8\n  conv_channels: 2\n"
                           f"train:\n  phone_ctc_weight: 0.3\n  inter_ctc_weight: 0.2\n  phone_lexicon: {lexicon}\n")
    config = load_config(cfg)
    model = AcousticModel(config.features, config.model, 29)
    attach_phone_head(model, config, None, "cpu")  # as training does
    params = sum(p.numel() for p in model.phone_head.parameters())
    assert main(["summary", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert (f"training only (not in a saved model): phone CTC head on layer 2, linear 16 -> 8, log-softmax "
            f"(weight 0.3), {params:,} params") in out
    assert "training only (not in a saved model): intermediate CTC: layer 2 through the same head W_y" in out
    assert re.search(rf"^total\s+{model.num_parameters():,}$", out, re.M)  # the saved model has no phone head
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "net.svg")]) == 0
    assert f"training only: phone CTC head on layer 2, linear 16 → 8, log-softmax (weight 0.3), {params:,} params" \
        in svg_text(tmp_path / "net.svg")


def test_the_gap_of_a_deep_network_continues_the_arrows_into_the_layer_above(tmp_path):
    from matplotlib.patches import FancyBboxPatch

    from asr.diagram import BOX_W, systems_figure
    from asr.diagram_text import model_to_draw

    cfg = _write(tmp_path, "model:\n  num_layers: 8\n  hidden_size: 4\n  conv_channels: 2\n")
    ax = systems_figure([model_to_draw(config=cfg)]).axes[0]
    boxes = {round(p.get_x() + p.get_width() / 2, 3) for p in ax.patches
             if isinstance(p, FancyBboxPatch) and abs(p.get_width() - BOX_W) < 1e-6}
    dotted = {round(x, 3) for line in ax.lines if line.get_linestyle() == ":" for x in line.get_xdata()}
    assert len(dotted) == 8 and dotted <= boxes  # 4 steps x 2 directions, each under a chain's box


@pytest.mark.parametrize("yaml, expected, wrong", [
    ("model:\n  subsampling_factor: 1\n", "1 conv layer (3×3, stride 1", "1 conv layers"),
    ("features:\n  normalize: none\n", "not normalized", "none CMVN"),
    ("features:\n  kind: spectrogram\n", "log power spectrum", "linear-spectrum"),
])
def test_the_labels_read_as_english(tmp_path, yaml, expected, wrong):
    cfg = _write(tmp_path, yaml + ("model:\n" if "model:" not in yaml else "") + "  num_layers: 1\n  hidden_size: 8\n"
                 "  conv_channels: 2\n")
    assert main(["diagram", "--config", str(cfg), "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert expected in text and wrong not in text


def test_a_config_takes_section_key_value_overrides_as_train_does(capsys):
    assert main(["summary", "--config", str(REPO_ROOT / "configs" / "small.yaml"), "model.cell=gru",
                 "model.num_layers=1"]) == 0
    assert "1 x 256 bidirectional GRU" in capsys.readouterr().out


def test_overrides_without_a_config_are_refused(tiny_model_dir, tmp_path, capsys):
    assert main(["summary", "--model", str(tiny_model_dir), "model.cell=gru"]) == 2
    assert "overrides are for --config" in capsys.readouterr().err
    # the built-in package (it rescores with several systems) drew itself unchanged, exit 0
    assert main(["diagram", "-o", str(tmp_path / "d.svg"), "model.cell=gru"]) == 2
    assert "overrides are for --config" in capsys.readouterr().err and not (tmp_path / "d.svg").exists()


def test_one_system_of_a_package_that_rescores_is_drawn_alone_when_asked_for(rescoring_package, tmp_path, capsys):
    assert main(["diagram", "--model", str(rescoring_package), "--system", "2", "-o", str(tmp_path / "net.svg")]) == 0
    text = svg_text(tmp_path / "net.svg")
    assert "system 2 of 2 (system2/): 1 × 8 unidirectional RNN (tanh)" in text and "system 1 of 2" not in text
    assert text.count("output y(t)") == 1
    assert main(["summary", "--model", str(rescoring_package), "--system", "3"]) == 2
    assert "--system 3, but the package has 2 systems" in capsys.readouterr().err


def test_a_model_s_path_is_drawn_as_named_and_a_long_title_stays_inside_the_picture(tiny_model_dir, tmp_path):
    import shutil

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from asr.diagram import systems_figure
    from asr.diagram_text import systems_to_draw

    model = tmp_path / "librispeech_960h_bidirectional_gru_2x16_run3" / "checkpoints" / "the_best_so_far"
    shutil.copytree(tiny_model_dir, model)
    assert main(["diagram", "--model", str(model), "-o", str(tmp_path / "net.svg")]) == 0
    assert str(model) in svg_text(tmp_path / "net.svg")  # "2x16" in a name is not typeset as 2 × 16
    fig = systems_figure(*systems_to_draw(model))
    renderer = FigureCanvasAgg(fig).get_renderer()
    for text in fig.axes[0].texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, text.get_text()


@pytest.mark.parametrize("command", [["diagram", "-o", "net.svg"], ["summary"]])
@pytest.mark.parametrize("size", ["1", "0"])
def test_a_vocabulary_of_fewer_than_two_tokens_is_refused_as_ctc_needs_a_blank_and_a_token(command, size, capsys,
                                                                                           tmp_path):
    command = [str(tmp_path / a) if a.endswith(".svg") else a for a in command]
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--config", "configs/small.yaml", "--vocab-size", size])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"usage: asr {command[0]}" in err
    assert f"argument --vocab-size: must be at least 2 (the CTC blank and one token), got {size}" in err


def test_a_model_path_too_long_for_one_line_is_drawn_whole_on_several_lines_inside_the_picture(tiny_model_dir,
                                                                                              tmp_path):
    import shutil

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from asr.diagram import systems_figure
    from asr.diagram_text import systems_to_draw

    model = tmp_path.joinpath(*[f"experiment_folder_number_{i}" for i in range(12)], "model")
    assert len(str(model)) > 300
    shutil.copytree(tiny_model_dir, model)
    fig = systems_figure(*systems_to_draw(model))
    renderer = FigureCanvasAgg(fig).get_renderer()
    for text in fig.axes[0].texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, text.get_text()
    title = next(t for t in fig.axes[0].texts if "experiment_folder_number_0" in t.get_text())
    lines = title.get_text().split("\n")
    assert "".join(lines[:-1]) == f"{model}:"  # broken after a "/", nothing left out
    assert all(line.endswith("/") for line in lines[:-2]) and title.get_fontsize() >= 7
