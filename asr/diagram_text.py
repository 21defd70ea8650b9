"""The model's own structure in words and numbers: which model (or package systems) to show,
a per-layer summary table, each cell's equations, and which feature frames each output step
sees. ``asr summary`` prints these; asr/diagram.py draws them.

Everything is read off a real ``AcousticModel``: sizes from its modules, parameter counts from
``parameters()``, output shapes from forward hooks on a dummy input, receptive ranges from the
subsampling's own kernels and strides, so neither text nor picture can drift from the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from asr.config import Config, ConfigError
from asr.config_files import load_config
from asr.model import AcousticModel, ConvSubsampling, FrameStacking, MaskedBatchNorm, RecurrentLayer
from asr.model_dir import PRETRAINED_DIR, ModelDirError, load_model_dir
from asr.provenance import provenance_line, read_provenance
from asr.text import plural

CELL_NAMES = {"rnn_tanh": "RNN (tanh)", "rnn_relu": "RNN (ReLU)", "lstm": "LSTM", "gru": "GRU"}
FEATURE_NAMES = {"fbank": "log-mel", "mfcc": "MFCC", "spectrogram": "log power spectrum"}
NORMALIZED = {"global": "global CMVN", "utterance": "per-utterance CMVN", "none": "not normalized"}


@dataclass(frozen=True)
class TrainingHead:
    """An output only training has (a saved model leaves it out): drawn beside its layer."""
    layer: int
    text: str
    params: int

    def described(self) -> str:
        return f"{self.text}, " + (f"{self.params:,} params" if self.params else "no weights of its own")


@dataclass(frozen=True)
class System:
    model: AcousticModel
    title: str
    notes: tuple[str, ...] = ()  # what the numbers assume
    heads: tuple[TrainingHead, ...] = ()  # a config's training-only outputs
    trained: str = ""  # a saved model's provenance, in a line


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    shape: tuple[int, ...]
    params: int
    depth: int  # 0: a block of the model, 1: a part of that block


# --- which model ---------------------------------------------------------------------------

def model_to_draw(model_dir: str | Path | None = None, config: str | Path | None = None,
                  vocab_size: int | None = None, overrides: list[str] = ()) -> System:
    """A model directory as saved, or the model a training config (with ``section.key=value``
    overrides) builds, untrained. A config does not hold the vocabulary: phones are counted from
    ``train.phone_lexicon`` as training counts them; characters (29: blank, |, a-z and ') and BPE
    pieces (``train.bpe_vocab_size + 1``) come from the training text, so those are assumed and
    the notes say so, unless ``vocab_size`` is given."""
    if config is None:
        if overrides:
            raise ConfigError("section.key=value overrides are for --config: a model directory is drawn as saved")
        if model_dir is None and not PRETRAINED_DIR.is_dir():
            raise ModelDirError(f"no packaged model in {PRETRAINED_DIR}: pass --model DIR or --config CONFIG.yaml")
        loaded = load_model_dir(model_dir)
        return System(loaded.model, model_title(loaded.model, str(loaded.path)),
                      trained=provenance_line(read_provenance(loaded.path)))
    cfg = load_config(config, list(overrides))
    notes = []
    if vocab_size is None:
        vocab_size, note = _config_vocab(cfg)
        notes += [note] if note else []
    model = AcousticModel(cfg.features, cfg.model, vocab_size)
    return System(model, model_title(model, str(config)), tuple(notes), tuple(training_heads(cfg, model)))


def _config_vocab(cfg: Config) -> tuple[int, str]:
    t = cfg.train
    if t.units == "phone":  # as training builds it: blank, | and the lexicon's phones
        return len(_phone_lexicon(cfg).phones) + 2, ""
    if t.units == "bpe":
        return (t.bpe_vocab_size + 1, f"{t.bpe_vocab_size + 1} tokens assumed (train.bpe_vocab_size + 1): "
                "sentencepiece may learn fewer pieces from a small text")
    return 29, "29 tokens assumed (blank, |, a-z and '): training takes the characters of its text"


def _phone_lexicon(cfg: Config):
    from asr.phones import LexiconError, PhoneLexicon

    try:
        return PhoneLexicon.load(cfg.train.phone_lexicon)
    except LexiconError as e:
        raise ConfigError(f"train.phone_lexicon: {e}") from None


def training_heads(cfg: Config, model: AcousticModel) -> list[TrainingHead]:
    """The outputs that ``train.phone_ctc_weight`` / ``train.inter_ctc_weight`` add while training
    (asr/train_setup.py attach_phone_head, AcousticModel.forward)."""
    heads = []
    if k := cfg.phone_ctc_layer:
        phones = len(_phone_lexicon(cfg))  # the phones and the blank, as attach_phone_head sizes it
        head = nn.Linear(model.layers[k - 1].out_dim, phones)
        heads.append(TrainingHead(k, f"phone CTC head on layer {k}, linear {head.in_features} -> {phones}, "
                                     f"log-softmax (weight {cfg.train.phone_ctc_weight:g})", n_params(head)))
    if k := cfg.inter_ctc_layer:
        heads.append(TrainingHead(k, f"intermediate CTC: layer {k} through the same head W_y, log-softmax "
                                     f"(weight {cfg.train.inter_ctc_weight:g})", 0))
    return heads


def systems_to_draw(model_dir: str | Path | None = None, config: str | Path | None = None,
                    vocab_size: int | None = None, overrides: list[str] = (),
                    system: int | None = None) -> tuple[list[System], str]:
    """([System], heading): ``model_to_draw``'s one (heading ""), or every system of a package that
    rescores (MODEL/rescoring.yaml: the first system at its root, the others in systemN/, as the
    built-in package), in its order, named by their folders, under a heading that says so;
    ``system`` (1-based): that one alone."""
    from asr.rescoring_files import RESCORING_FILE, read_rescoring

    settings = Path(model_dir if model_dir is not None else PRETRAINED_DIR) / RESCORING_FILE
    if config is not None or not settings.is_file():
        if system not in (None, 1):
            raise ModelDirError(f"{config or model_dir or PRETRAINED_DIR}: one model, no system {system} "
                                "(--system picks one of a package that rescores)")
        return [model_to_draw(model_dir, config, vocab_size, overrides)], ""
    if overrides:  # as model_to_draw refuses them for one model directory, not dropped unsaid
        raise ConfigError("section.key=value overrides are for --config: a model directory is drawn as saved")
    models, options = read_rescoring(settings)
    n = len(models)
    if system is not None and not 1 <= system <= n:
        raise ModelDirError(f"{settings.parent}: --system {system}, but the package has {n} systems")
    folder = lambda path: os.path.relpath(path, settings.parent) + "/"  # noqa: E731
    systems = []
    for k, m in enumerate(models, 1):
        if system in (None, k):
            drawn = model_to_draw(os.path.normpath(m))
            systems.append(replace(drawn, title=f"system {k} of {n} ({folder(m)}): {model_title(drawn.model)}"))
    rnnlm = f", and an RNN LM ({folder(options.rnnlm)}, not shown)" if options.rnnlm else ""
    return systems, (f"{settings.parent}\na package that rescores n-best lists with {n} systems "
                     f"({RESCORING_FILE}){rnnlm}")


def model_title(model: AcousticModel, name: str = "") -> str:
    c = model.cfg
    kind = "bidirectional" if c.bidirectional else "unidirectional"
    text = (f"{c.num_layers} x {c.hidden_size} {kind} {CELL_NAMES[c.cell]}, {model.vocab_size} tokens, "
            f"{model.num_parameters():,} parameters")
    return f"{name}: {text}" if name else text


# --- the summary table ---------------------------------------------------------------------

def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(module: nn.Module, model: AcousticModel) -> str:
    """One line naming what a module computes, with its sizes."""
    if module is model.frontend:
        f = model.features_cfg
        return f"{FEATURE_NAMES[f.kind]} {f.dim} every {1000 * model.feature_shift:g} ms, {NORMALIZED[f.normalize]}"
    if isinstance(module, ConvSubsampling):
        return (f"{plural(len(module.convs), 'conv layer')} (3x3, stride {module.strides[0]}, "
                f"{module.convs[0].out_channels} ch) + linear -> {module.proj.out_features}")
    if isinstance(module, FrameStacking):
        return f"stack {plural(module.factor, 'frame')} + linear -> {module.proj.out_features}"
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
    modules = [m for name, block in _blocks(model) for m in [(name, block, 0)] + [(n, p, 1) for n, p in _parts(block)]]
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


def summary_text(system: System, seconds: float = 1.0) -> str:
    model = system.model
    rows = layer_rows(model, seconds)
    total = model.num_parameters()
    shape = lambda s: "(" + ", ".join(map(str, s)) + ")"  # noqa: E731
    name_w = max(len(r.name) + 2 * r.depth for r in rows) + 2
    what_w = max(len(r.what) for r in rows) + 2
    shape_w = max(len(shape(r.shape)) for r in rows) + 2
    lines = [system.title, *([system.trained] if system.trained else []), *(f"note: {n}" for n in system.notes),
             *(f"training only (not in a saved model): {h.described()}" for h in system.heads),
             f"input: {seconds:g} s of audio; shapes are (batch, time, features), convolutions "
             "(batch, channels, time, frequency)", ""]
    header = f"{'stage':<{name_w}}{'what':<{what_w}}{'output shape':<{shape_w}}{'parameters':>12}"
    lines += [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{'  ' * r.depth + r.name:<{name_w}}{r.what:<{what_w}}{shape(r.shape):<{shape_w}}{r.params:>12,}")
    counted = sum(r.params for r in rows if r.depth == 0)
    if counted != total:  # a stage the table does not know: still shown in the total
        lines.append(f"{'other':<{name_w + what_w + shape_w}}{total - counted:>12,}")
    lines += ["-" * len(header), f"{'total':<{name_w + what_w + shape_w}}{total:>12,}"]
    return "\n".join(lines)


def systems_summary_text(systems: list[System], seconds: float = 1.0, heading: str = "") -> str:
    """``summary_text`` of each system; for several, under ``heading``, then their total."""
    tables = [summary_text(s, seconds) for s in systems]
    body = [*([heading] if heading else []), *tables]
    if len(systems) == 1:
        return "\n\n".join(body)
    width = max(len(t.splitlines()[-1]) for t in tables)  # right-aligned with each table's own total
    total, label = sum(s.model.num_parameters() for s in systems), f"total of the {len(systems)} systems"
    return "\n\n".join([*body, f"{label:<{width - 12}}{total:>12,}"])


# --- what each step sees, and what each cell computes --------------------------------------

def frames_seen(subsampling: ConvSubsampling | FrameStacking) -> int:
    """How many feature frames a step past the first few sees (the subsampling's ``input_frames``)."""
    lo, hi = subsampling.input_frames(8, clipped=False)
    return hi - lo + 1


def cell_equations(cell: str, bidirectional: bool) -> list[str]:
    """The layer's recurrence as torch computes it (asr/model.py RecurrentLayer._unroll): W_x and
    W_h are torch's weight_ih and weight_hh, the gates' matrices stacked; b_x, b_h its two biases."""
    if cell in ("rnn_tanh", "rnn_relu"):
        f = "tanh" if cell == "rnn_tanh" else "ReLU"
        lines = [f"h(t) = {f}(W_x x(t) + b_x + W_h h(t-1) + b_h)"]
    elif cell == "lstm":
        gate = lambda g, f: f"{g} = {f}(W_x{g} x(t) + b_x{g} + W_h{g} h(t-1) + b_h{g})"  # noqa: E731
        lines = [f"{gate('i', 'σ')}      {gate('f', 'σ')}      (input, forget gates)",
                 f"{gate('g', 'tanh')}      {gate('o', 'σ')}      (candidate, output gate)",
                 "c(t) = f ⊙ c(t-1) + i ⊙ g      h(t) = o ⊙ tanh(c(t))      (cell state c: the additive memory)"]
    else:
        gate = lambda g: f"{g} = σ(W_x{g} x(t) + b_x{g} + W_h{g} h(t-1) + b_h{g})"  # noqa: E731
        lines = [f"{gate('r')}      {gate('z')}      (reset, update gates)",
                 "n = tanh(W_xn x(t) + b_xn + r ⊙ (W_hn h(t-1) + b_hn))      h(t) = (1 - z) ⊙ n + z ⊙ h(t-1)"]
    if bidirectional:
        lines.append("backward chain: the same with its own weights, h(t+1) for h(t-1), from the last step down")
    return lines


def layer_output(model: AcousticModel) -> str:
    """u(t), what a layer hands up: its chains' h(t), concatenated, normalized, dropped out."""
    c = model.cfg
    u = "[→h(t); ←h(t)]" if c.bidirectional else "h(t)"
    if c.norm != "none":
        u = {"layer": "LayerNorm", "batch": "BatchNorm"}[c.norm] + f"({u})"
    return f"u(t) = {u}" + (f", then dropout {c.dropout:g} while training" if c.dropout else "")


def equations(model: AcousticModel) -> list[str]:
    """What the picture's legend says: the cell, what a layer hands up, its input, the output layer."""
    c, sub = model.cfg, model.subsampling
    seen = (f"stacks {plural(sub.factor, 'feature frame')}" if isinstance(sub, FrameStacking)
            else f"sees {plural(frames_seen(sub), 'feature frame')}")
    hop = 1000 * model.feature_shift
    return [f"{CELL_NAMES[c.cell]} cell, every layer and direction with its own W_x, W_h, b"
            + ("; σ: sigmoid, ⊙: elementwise product" if c.cell in ("lstm", "gru") else ""),
            *cell_equations(c.cell, c.bidirectional),
            f"{layer_output(model)}: a layer's output per step",
            f"x(t): layer 1's is the subsampling's output, one every {1000 * model.frame_shift:g} ms (each {seen} "
            f"of {hop:g} ms); layer k's, for k > 1, is u(t) of layer k-1",
            f"y(t) = log_softmax(W_y u(t) + b_y) over the {model.vocab_size} tokens, with u(t) of layer "
            f"{len(model.layers)}, the top"]
