"""The unrolled-network diagram and the per-layer summary, read off a real model."""

import re

import pytest
import torch
from matplotlib.image import imread

import asr.diagram
from asr.cli import main
from asr.config import load_config
from asr.diagram import layer_rows
from asr.model import AcousticModel
from asr.model_dir import load_model_dir
from conftest import REPO_ROOT


def svg_text(path) -> str:
    """The text elements of an SVG, joined (the diagram keeps its labels as text)."""
    return " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text()))


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
    monkeypatch.setattr(asr.diagram, "PRETRAINED_DIR", tmp_path / "absent")
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
