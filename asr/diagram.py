"""The model's own structure: a per-layer text summary and the textbook picture of the
network unrolled over a few time steps.

Both are read off a real ``AcousticModel``: sizes from its modules, parameter counts from
``parameters()``, output shapes from forward hooks on a dummy input, so the picture cannot
drift from the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import nn

from asr.config import load_config
from asr.model import AcousticModel, ConvSubsampling, FrameStacking, MaskedBatchNorm, RecurrentLayer
from asr.model_dir import PRETRAINED_DIR, ModelDirError, load_model_dir
from asr.plots import image_path

CELL_NAMES = {"rnn_tanh": "RNN (tanh)", "rnn_relu": "RNN (ReLU)", "lstm": "LSTM", "gru": "GRU"}
FEATURE_NAMES = {"fbank": "log-mel", "mfcc": "MFCC", "spectrogram": "linear-spectrum"}
FORWARD, BACKWARD, GREY, OUTPUT = "#1f6fb4", "#d9720b", "#555555", "#2a8a2a"


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    shape: tuple[int, ...]
    params: int
    depth: int  # 0: a block of the model, 1: a part of that block


def model_to_draw(model_dir: str | Path | None = None, config: str | Path | None = None,
                  vocab_size: int | None = None) -> tuple[AcousticModel, str]:
    """(model, name) from a model directory, or built from a config file (untrained weights;
    the vocabulary size is not in a config, so it is given, or else 29 = blank, |, a-z and ';
    with ``train.units=bpe``, the pieces asked for, ``train.bpe_vocab_size + 1``; with phones,
    41 = blank, | and cmudict's 39 phones)."""
    if config is not None:
        cfg = load_config(config)
        if vocab_size is None:
            vocab_size = {"bpe": cfg.train.bpe_vocab_size + 1, "phone": 41}.get(cfg.train.units, 29)
        return AcousticModel(cfg.features, cfg.model, vocab_size), str(config)
    if model_dir is None and not PRETRAINED_DIR.is_dir():
        raise ModelDirError(f"no packaged model in {PRETRAINED_DIR}: pass --model DIR or --config CONFIG.yaml")
    loaded = load_model_dir(model_dir)
    return loaded.model, str(loaded.path)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(module: nn.Module, model: AcousticModel) -> str:
    """One line naming what a module computes, with its sizes."""
    if module is model.frontend:
        f = model.features_cfg
        return f"{FEATURE_NAMES[f.kind]} {f.dim} every {1000 * f.hop_length / f.sample_rate:g} ms, {f.normalize} CMVN"
    if isinstance(module, ConvSubsampling):
        return (f"{len(module.convs)} conv layers (3x3, stride {module.strides[0]}, {module.convs[0].out_channels} ch)"
                f" + linear -> {module.proj.out_features}")
    if isinstance(module, FrameStacking):
        return f"stack {module.factor} frames + linear -> {module.proj.out_features}"
    if isinstance(module, nn.Conv2d):
        return (f"conv {module.kernel_size[0]}x{module.kernel_size[1]} stride {module.stride[0]}, "
                f"{module.in_channels} -> {module.out_channels} ch, ReLU")
    if isinstance(module, RecurrentLayer):
        if module.backward_rnn is None:
            return f"unidirectional {CELL_NAMES[module.cell]}, {module.hidden_size} units"
        return f"bidirectional {CELL_NAMES[module.cell]}, {module.hidden_size} per direction"
    if isinstance(module, nn.RNNBase):
        return f"{CELL_NAMES[model.cfg.cell]} {module.input_size} -> {module.hidden_size}"
    if isinstance(module, MaskedBatchNorm):
        return f"BatchNorm {module.num_features}"
    if isinstance(module, nn.LayerNorm):
        return f"LayerNorm {module.normalized_shape[0]}"
    if module is model.head:
        return f"linear {module.in_features} -> {module.out_features}, log-softmax (CTC)"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features} -> {module.out_features}"
    return type(module).__name__


def _blocks(model: AcousticModel) -> list[tuple[str, nn.Module]]:
    """The model's top-level stages in order, a ModuleList expanded into its items."""
    names = {"frontend": "features", "subsampling": "subsampling", "head": "CTC head"}
    out = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            out += [(f"layer {i + 1}", m) for i, m in enumerate(child)]
        else:
            out.append((names.get(name, name), child))
    return out


def _parts(block: nn.Module) -> list[tuple[str, nn.Module]]:
    """A stage's direct parts that hold parameters (a ModuleList's items one by one)."""
    names = {"forward_rnn": "forward", "backward_rnn": "backward"}
    out = []
    for name, child in block.named_children():
        items = ([(f"{name}.{i}", m) for i, m in enumerate(child)] if isinstance(child, nn.ModuleList)
                 else [(names.get(name, name), child)])
        out += [(n, m) for n, m in items if n_params(m) > 0]
    return out


@torch.no_grad()
def layer_rows(model: AcousticModel, seconds: float = 1.0) -> list[Row]:
    """Every stage (and its parts that hold parameters) with its output shape for one
    utterance of ``seconds`` of audio, and its parameter count."""
    modules = [(name, block, 0) for name, block in _blocks(model)]
    modules = [m for name, block, _ in modules for m in [(name, block, 0)] + [(n, p, 1) for n, p in _parts(block)]]
    shapes: dict[int, tuple] = {}

    def hook(module, inputs, output):
        first = output[0] if isinstance(output, tuple) else output
        shapes[id(module)] = tuple(first.shape)

    handles = [m.register_forward_hook(hook) for _, m, _ in modules]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        n = max(1, int(round(seconds * model.features_cfg.sample_rate)))
        model(torch.randn(1, n, device=device) * 0.1, torch.tensor([n], device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [Row(name, describe(m, model), shapes.get(id(m), ()), n_params(m), depth) for name, m, depth in modules]


def summary_text(model: AcousticModel, seconds: float = 1.0, title: str = "") -> str:
    rows = layer_rows(model, seconds)
    total = model.num_parameters()
    shape = lambda s: "(" + ", ".join(map(str, s)) + ")"  # noqa: E731
    name_w = max(len(r.name) + 2 * r.depth for r in rows) + 2
    what_w = max(len(r.what) for r in rows) + 2
    shape_w = max(len(shape(r.shape)) for r in rows) + 2
    lines = [title or "AcousticModel",
             f"input: {seconds:g} s of audio; shapes are (batch, time, features), convolutions "
             "(batch, channels, time, frequency)", "",
             f"{'stage':<{name_w}}{'what':<{what_w}}{'output shape':<{shape_w}}{'parameters':>12}"]
    lines.append("-" * len(lines[-1]))
    for r in rows:
        lines.append(f"{'  ' * r.depth + r.name:<{name_w}}{r.what:<{what_w}}{shape(r.shape):<{shape_w}}{r.params:>12,}")
    counted = sum(r.params for r in rows if r.depth == 0)
    if counted != total:  # a stage the table does not know: still shown in the total
        lines.append(f"{'other':<{name_w + what_w + shape_w}}{total - counted:>12,}")
    lines += ["-" * len(lines[3]), f"{'total':<{name_w + what_w + shape_w}}{total:>12,}"]
    return "\n".join(lines)


def model_title(model: AcousticModel, name: str = "") -> str:
    c = model.cfg
    kind = "bidirectional" if c.bidirectional else "unidirectional"
    text = (f"{c.num_layers} x {c.hidden_size} {kind} {CELL_NAMES[c.cell]}, {model.vocab_size} tokens, "
            f"{model.num_parameters():,} parameters")
    return f"{name}: {text}" if name else text


# --- the unrolled picture --------------------------------------------------------------------

STEPS, COL_W, LEFT_W, RIGHT_W = 4, 1.55, 3.3, 3.1
BOX_W, BOX_H, OFFSET = 0.56, 0.42, 0.33
MAX_DRAWN_LAYERS = 6


class _Canvas:
    """Drawing in inches: one axes covering the figure, 1 data unit = 1 inch."""

    def __init__(self, width: float, height: float):
        self.fig = Figure(figsize=(width, height))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")

    def box(self, x, y, w, h, text="", color=GREY, fill="white", size=9, weight="normal", round_=0.06):
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={round_}",
                                         edgecolor=color, facecolor=fill, linewidth=1.3, zorder=3))
        if text:
            self.text(x, y, text, size=size, color=color if fill == "white" else "black", weight=weight, zorder=4)

    def arrow(self, start, end, color=GREY, width=1.1, rad=0.0):
        self.ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=color,
                                          linewidth=width, shrinkA=0, shrinkB=0, zorder=2,
                                          connectionstyle=f"arc3,rad={rad}"))

    def text(self, x, y, s, size=9, color="black", ha="center", va="center", weight="normal", zorder=4, **kw):
        s = re.sub(r"(\d)( ?)x( ?)(\d)", r"\1\2×\3\4", s.replace("->", "→"))  # typeset the plain-text labels
        self.ax.text(x, y, s, fontsize=size, color=color, ha=ha, va=va, weight=weight, zorder=zorder, **kw)


def unrolled_figure(model: AcousticModel, title: str = "") -> Figure:
    """The network drawn as in a textbook: input frames, subsampling, every recurrent layer
    unrolled over STEPS time steps with its recurrent connections, and the CTC outputs."""
    rows = {r.name: r for r in layer_rows(model, 1.0) if r.depth == 0}
    layers = list(enumerate(model.layers, 1))
    if len(layers) > MAX_DRAWN_LAYERS:  # layers 2..L-1 are alike: draw 1, 2, a gap, L
        layers = layers[:2] + [(None, None)] + layers[-1:]
    width = LEFT_W + STEPS * COL_W + 0.9 + RIGHT_W
    cv = _Canvas(width, 40.0)  # height fixed at the end, once everything is placed
    cols = [LEFT_W + (t + 0.5) * COL_W for t in range(STEPS)]
    dots_x = LEFT_W + STEPS * COL_W + 0.35
    f, c = model.features_cfg, model.cfg

    def left(y, head, body):
        cv.text(0.25, y + 0.08, head, size=10.5, weight="bold", ha="left", va="bottom")
        cv.text(0.25, y + 0.02, body, size=8.5, ha="left", va="top", color="#333")

    def right(y, text, color):
        cv.text(dots_x + 0.45, y, text, size=8.5, ha="left", color=color)

    # input feature frames, `factor` of them per step
    y, factor = 0.95, c.subsampling_factor
    rng, cmap = np.random.default_rng(0), colormaps["magma"]
    bar_w = min(0.11, (COL_W - 0.4) / factor)
    for t, x0 in enumerate(cols):
        for x in x0 - bar_w * factor / 2 + bar_w * (np.arange(factor) + 0.5):
            for k, v in enumerate(rng.uniform(0.15, 0.95, 8)):
                cv.ax.add_patch(Rectangle((x - bar_w * 0.42, y - 0.4 + k * 0.1), bar_w * 0.84, 0.1,
                                          facecolor=cmap(v), edgecolor="none", zorder=3))
        cv.text(x0, y - 0.58, f"frames {t * factor + 1}-{(t + 1) * factor}", size=8, color="#444")
        cv.arrow((x0, y + 0.45), (x0, y + 0.95))
    cv.text(dots_x, y, "...", size=12, color="#444")
    left(y + 0.1, "input x(t)", f"{f.dim} {FEATURE_NAMES[f.kind]} features\nevery "
         f"{1000 * f.hop_length / f.sample_rate:g} ms, {f.normalize} CMVN")

    # subsampling: one wide box
    y += 1.3
    x_start = cols[0] - COL_W / 2 + 0.1
    cv.box((x_start + dots_x + 0.15) / 2, y, dots_x + 0.15 - x_start, 0.55,
           f"{rows['subsampling'].what}\n{factor} frames -> 1 step ({1000 * model.frame_shift:g} ms)",
           size=8.5, color="#333", fill="#eeeeee")
    left(y, "subsampling", f"{rows['subsampling'].params:,} params")
    below = y + 0.275  # where the arrows into the next row start

    for index, layer in layers:
        if layer is None:
            left(below + 0.5, f"layers 3-{len(model.layers) - 1}",
                 f"each as layer 2, {n_params(model.layers[1]):,} params")
            for x0 in cols:
                cv.ax.plot([x0, x0], [below, below + 0.7], color=GREY, linewidth=1.1, linestyle=":", zorder=2)
            below += 0.7
            continue
        below = _draw_layer(cv, model, index, layer, cols, dots_x, below, left, right)

    # CTC output
    y = below + 0.75
    for t, x0 in enumerate(cols):
        cv.arrow((x0, below), (x0, y - BOX_H / 2))
        cv.box(x0, y, BOX_W, BOX_H, f"y({t + 1})", color=OUTPUT, fill="#e6f4e6", size=9)
    cv.text(dots_x, y, "...", size=12, color=OUTPUT)
    left(y, "output y(t)", f"{rows['CTC head'].what}\n{rows['CTC head'].params:,} params")
    right(y, f"P(token | x) per step,\n{model.vocab_size} tokens incl. CTC blank", OUTPUT)
    height = y + BOX_H / 2 + 0.8
    cv.text(width / 2, height - 0.35, title or model_title(model), size=12, weight="bold")
    cv.fig.set_size_inches(width, height)
    cv.ax.set_ylim(0, height)
    return cv.fig


def _draw_layer(cv, model, index, layer, cols, dots_x, below, left, right) -> float:
    """One recurrent layer unrolled: its chain(s), recurrent arrows, and the concat/norm row
    above. Returns the height at which the next row's arrows start."""
    c, bi = model.cfg, layer.backward_rnn is not None
    y_f = below + 0.75
    chains = [(layer.forward_rnn, y_f, FORWARD, -OFFSET if bi else 0.0, +1)]
    if bi:
        chains.append((layer.backward_rnn, y_f + 0.78, BACKWARD, +OFFSET, -1))
    y_n = chains[-1][1] + BOX_H / 2 + 0.55  # the concat / norm row
    node = " + ".join((["concat"] if bi else []) + ([{"layer": "LN", "batch": "BN"}[c.norm]] if layer.norm else []))
    for rnn, yc, color, dx, direction in chains:
        for t, x0 in enumerate(cols):
            x = x0 + dx
            cv.arrow((x, below), (x, yc - BOX_H / 2))
            cv.box(x, yc, BOX_W, BOX_H, f"h({t + 1})", color=color, size=9)
            if node:
                cv.arrow((x, yc + BOX_H / 2), (x, y_n - 0.15))
            else:  # nothing between this layer and the next: a plain line on
                cv.ax.plot([x, x], [yc + BOX_H / 2, y_n + 0.15], color=GREY, linewidth=1.1, zorder=2)
        for t in range(STEPS - 1):  # the recurrent connections
            a, b = (cols[t] + dx + BOX_W / 2, yc), (cols[t + 1] + dx - BOX_W / 2, yc)
            cv.arrow(*((a, b) if direction > 0 else (b, a)), color=color, width=1.6)
        ends = ((cols[-1] + dx + BOX_W / 2, yc), (dots_x - 0.2, yc))
        cv.arrow(*(ends if direction > 0 else ends[::-1]), color=color, width=1.6)
        cv.text(dots_x, yc, "...", size=12, color=color)
        if direction > 0:  # h(0) = 0 enters the forward chain at t = 1
            start = cols[0] + dx - BOX_W / 2
            cv.text(start - 0.42, yc, "0", size=9, color=color)
            cv.arrow((start - 0.32, yc), (start, yc), color=color, width=1.6)
        label = ("forward: h(t-1) -> h(t)" if direction > 0 else "backward: h(t+1) -> h(t)") if bi \
            else "recurrence: h(t-1) -> h(t)"
        right(yc, f"{label}\n{describe(rnn, model)}, {n_params(rnn):,} params", color)
    if node:
        for x0 in cols:
            cv.box(x0, y_n, 2 * OFFSET + BOX_W if bi else BOX_W, 0.3, node, color=GREY, fill="#f4f4f4", size=8)
    parts = (["concat"] if bi else []) + ([describe(layer.norm, model)] if layer.norm is not None else [])
    text = " + ".join(parts) + (f", {n_params(layer.norm):,} params" if layer.norm is not None else "")
    if c.dropout:
        text += ("\n" if text else "") + f"then dropout {c.dropout:g}"
    if text:
        right(y_n, text, GREY)
    left((y_f + y_n) / 2 + 0.15, f"layer {index}",
         f"{describe(layer, model)}\nout {layer.out_dim} per step\n{n_params(layer):,} params")
    return y_n + 0.15


def save_diagram(model: AcousticModel, out: str | Path, title: str = "") -> Path:
    out = image_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "asr"}):  # SVG text stays text
        metadata = {"Date": None} if out.suffix.lower() in (".svg", ".pdf") else None  # reproducible files
        unrolled_figure(model, title).savefig(out, dpi=110, metadata=metadata)
    return out
