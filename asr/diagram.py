"""The textbook picture of the network unrolled over a few time steps, drawn from a real
``AcousticModel`` (its numbers and equations come from asr/diagram_text.py): feature frames and
the ones each step sees, subsampling, every recurrent layer's chains with their recurrent
connections (and an LSTM's cell state), the CTC outputs, and the cell's equations.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

from asr.diagram_text import (FEATURE_NAMES, NORMALIZED, System, describe, equations, frames_seen, layer_rows,
                              n_params)
from asr.model import AcousticModel, ConvSubsampling, step_centre
from asr.plots import image_path
from asr.text import plural

FORWARD, BACKWARD, GREY, OUTPUT, TRAINING = "#1f6fb4", "#d9720b", "#555555", "#2a8a2a", "#7b3294"
STEPS, COL_W, LEFT_W, RIGHT_W = 4, 1.55, 3.3, 3.1
BOX_W, BOX_H, OFFSET = 0.56, 0.42, 0.33
CELL_ROWS = 0.09  # an LSTM box holds h (above) and c (below), this far from its middle
MAX_DRAWN_LAYERS = 6
WIDTH = LEFT_W + STEPS * COL_W + 0.9 + RIGHT_W
RIGHT_CHARS = 50  # a line of the right column at 8.5 pt
SYSTEM_GAP = 0.5  # between two systems' pictures, a rule across the middle
TITLE_CHARS = 100  # of a system's title at 12 pt bold, across the picture
MIN_TITLE_SIZE = 7.5  # pt: a path wider than the picture at this size goes on more lines instead


class _Canvas:
    """Drawing in inches: one axes covering the figure, 1 data unit = 1 inch. Every y is drawn
    ``y0`` higher, so that several systems' pictures stack, each drawn from its own y = 0."""

    def __init__(self, width: float, height: float):
        self.fig = Figure(figsize=(width, height))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.axis("off")
        self.width, self.y0 = width, 0.0

    def box(self, x, y, w, h, text="", color=GREY, fill="white", size=9, weight="normal", round_=0.06):
        self.ax.add_patch(FancyBboxPatch((x - w / 2, self.y0 + y - h / 2), w, h,
                                         boxstyle=f"round,pad=0,rounding_size={round_}",
                                         edgecolor=color, facecolor=fill, linewidth=1.3, zorder=3))
        if text:
            self.text(x, y, text, size=size, color=color if fill == "white" else "black", weight=weight, zorder=4)

    def arrow(self, start, end, color=GREY, width=1.1, rad=0.0, style="-"):
        (xa, ya), (xb, yb) = start, end
        self.ax.add_patch(FancyArrowPatch((xa, self.y0 + ya), (xb, self.y0 + yb), arrowstyle="-|>", mutation_scale=9,
                                          color=color, linewidth=width, shrinkA=0, shrinkB=0, zorder=2,
                                          connectionstyle=f"arc3,rad={rad}", linestyle=style))

    def rect(self, x, y, w, h, color):
        self.ax.add_patch(Rectangle((x, self.y0 + y), w, h, facecolor=color, edgecolor="none", zorder=3))

    def polygon(self, points, **kw):
        self.ax.add_patch(Polygon([(x, self.y0 + y) for x, y in points], closed=True, **kw))

    def line(self, xs, ys, **kw):
        self.ax.plot(xs, [self.y0 + y for y in ys], **kw)

    def text(self, x, y, s, size=9, color="black", ha="center", va="center", weight="normal", zorder=4, **kw):
        # typeset the plain-text labels' "3x3", "2 x 16", not a name's "lstm_5x1024" or "exp/3x256"
        s = re.sub(r"(?<![\w/.-])(\d+)( ?)x( ?)(\d+)(?![\w/.-])", r"\1\2×\3\4", s.replace("->", "→"))
        self.ax.text(x, self.y0 + y, s, fontsize=size, color=color, ha=ha, va=va, weight=weight, zorder=zorder, **kw)

    def fit(self, height: float) -> Figure:
        self.fig.set_size_inches(self.width, height)
        self.ax.set_ylim(0, height)
        return self.fig


def systems_figure(systems: list[System], heading: str = "") -> Figure:
    """Each system's network drawn as in a textbook (``_draw_unrolled``: input frames,
    subsampling, every recurrent layer unrolled over STEPS time steps with its recurrent
    connections, the CTC outputs), the first at the top, the next below it..., under ``heading``
    (a package's several systems in one picture)."""
    cv = _Canvas(WIDTH, 40.0 * len(systems))  # height fixed at the end, once everything is placed
    for i, system in enumerate(reversed(systems)):  # drawn from the bottom up
        if i:
            cv.line([0.25, WIDTH - 0.25], [-SYSTEM_GAP / 2] * 2, color="#bbbbbb", linewidth=1.0, zorder=1)
        cv.y0 += _draw_unrolled(cv, system) + SYSTEM_GAP
    height = cv.y0 - SYSTEM_GAP
    if heading:  # a package's path, then what it is
        lines, size = _title_lines(heading, 12.5)
        extra = 0.2 * max(0, len(lines) - 2)
        cv.y0 = 0.0
        cv.text(WIDTH / 2, height + 0.4 + extra / 2, "\n".join(lines), size=size, weight="bold")
        height += 0.8 + extra
    return cv.fit(height)


def _draw_unrolled(cv: _Canvas, system: System) -> float:
    """One network, from the canvas's y0 up; returns the height it took."""
    model = system.model
    rows = {r.name: r for r in layer_rows(model, 1.0) if r.depth == 0}
    layers = list(enumerate(model.layers, 1))
    if len(layers) > MAX_DRAWN_LAYERS:  # layers 2..L-1 are alike: draw 1, 2, a gap, L
        layers = layers[:2] + [(None, None)] + layers[-1:]
    cols = [LEFT_W + (t + 0.5) * COL_W for t in range(STEPS)]
    dots_x = LEFT_W + STEPS * COL_W + 0.35
    c, bi = model.cfg, model.cfg.bidirectional

    def left(y, head, body):
        cv.text(0.25, y + 0.08, head, size=10.5, weight="bold", ha="left", va="bottom")
        cv.text(0.25, y + 0.02, body, size=8.5, ha="left", va="top", color="#333")

    def right(y, text, color):
        cv.text(dots_x + 0.45, y, text, size=8.5, ha="left", color=color)

    y = _draw_frames(cv, model, cols, left) + 0.275  # the subsampling box's middle
    factor, ms = c.subsampling_factor, 1000 * model.frame_shift
    sub = model.subsampling
    how = (f"a step every {plural(factor, 'frame')} ({ms:g} ms), each seeing {frames_seen(sub)} frames: the "
           "windows overlap" if isinstance(sub, ConvSubsampling)
           else f"{plural(factor, 'frame')} stacked -> 1 step ({ms:g} ms), no overlap")
    x_start = cols[0] - COL_W / 2 + 0.1
    cv.box((x_start + dots_x + 0.15) / 2, y, dots_x + 0.15 - x_start, 0.55, f"{rows['subsampling'].what}\n{how}",
           size=8.5, color="#333", fill="#eeeeee")
    left(y, "subsampling", f"{rows['subsampling'].params:,} params\nout: x(t), {c.hidden_size} per step")
    below = y + 0.275  # where the arrows into the next row start
    for t, x0 in enumerate(cols):  # layer 1's input: one x(t) per step, not per feature frame
        cv.text(x0 if bi else x0 + 0.07, below + 0.16, f"x({t + 1})", size=7.5, color=GREY,
                ha="center" if bi else "left")

    for index, layer in layers:
        if layer is None:
            hidden = [h for h in system.heads if 3 <= h.layer < len(model.layers)]
            gap = max(0.7, 0.2 + 0.15 * len(_head_lines(hidden)))
            left(below + gap / 2 + 0.15, f"layers 3-{len(model.layers) - 1}",
                 f"each as layer 2, {n_params(model.layers[1]):,} params")
            for x in [x0 + dx for x0 in cols for dx in ((-OFFSET, OFFSET) if bi else (0.0,))]:
                cv.line([x, x], [below, below + gap], color=GREY, linewidth=1.1, linestyle=":", zorder=2)
            if hidden:
                _draw_heads(cv, hidden, cols[-1] + (OFFSET if bi else 0.0), below + gap / 2, below + gap / 2,
                            dots_x, right)
            below += gap
            continue
        below = _draw_layer(cv, system, index, layer, cols, dots_x, below, left, right)

    # CTC output
    y = below + 0.75
    for t, x0 in enumerate(cols):
        cv.arrow((x0, below), (x0, y - BOX_H / 2))
        cv.box(x0, y, BOX_W, BOX_H, f"y({t + 1})", color=OUTPUT, fill="#e6f4e6", size=9)
    cv.text(cols[0] - 0.07, (below + y - BOX_H / 2) / 2, "W_y", size=7.5, color=OUTPUT, ha="right")
    cv.text(dots_x, y, "...", size=12, color=OUTPUT)
    left(y, "output y(t)", f"{rows['CTC head'].what}\n{rows['CTC head'].params:,} params")
    right(y, "\n".join([f"P(token | x) per step,\n{model.vocab_size} tokens incl. CTC blank",
                        *(textwrap.fill(n, RIGHT_CHARS) for n in system.notes)]), OUTPUT)
    top = _draw_equations(cv, model, y + BOX_H / 2 + 0.35)
    lines, size = _title_lines(system.title)
    cv.text(WIDTH / 2, top + 0.45 + 0.1 * (len(lines) - 1), "\n".join(lines), size=size, weight="bold")
    return top + 0.8 + 0.2 * (len(lines) - 1)


def _title_lines(title: str, size: float = 12.0) -> tuple[list[str], float]:
    """A title too wide for the picture (a model's long path) on two lines, its path then what
    it is, in a smaller font, and a path too long even at MIN_TITLE_SIZE broken after its "/"s
    onto more lines, so that all of it is inside the picture and readable. Returns the lines and
    their font size (``size`` when they fit at it)."""
    lines = []
    for line in title.split("\n"):
        if len(line) > TITLE_CHARS and ": " in line:
            name, _, what = line.rpartition(": ")
            lines += [f"{name}:", what]
        else:
            lines.append(line)
    lines = [part for line in lines for part in _broken(line, int(TITLE_CHARS * 12 / MIN_TITLE_SIZE))]
    return lines, max(MIN_TITLE_SIZE, min(size, 12 * TITLE_CHARS / max(map(len, lines))))


def _broken(line: str, most: int) -> list[str]:
    """``line`` in pieces of at most ``most`` characters, each ending after a "/" where it can (a
    folder name longer than a line is cut in it)."""
    pieces, current = [], ""
    for part in re.findall(r"[^/]*/|[^/]+", line):
        if current and len(current) + len(part) > most:
            pieces.append(current)
            current = ""
        current += part
        while len(current) > most:
            pieces.append(current[:most])
            current = current[most:]
    return pieces + [current] if current else pieces


def _draw_frames(cv: _Canvas, model: AcousticModel, cols: list[float], left) -> float:
    """The feature frames at their own 10 ms pace, ``factor`` of them between two steps, each
    step's cone over the frames it sees (its ``input_frames``); returns the top of the cones."""
    f, sub = model.features_cfg, model.subsampling
    y, frame_w = 0.95, COL_W / model.cfg.subsampling_factor  # y: the frames' middle
    x_of = lambda i: cols[0] + (i - step_centre(sub)) * frame_w  # noqa: E731  (frame i, 0-based)
    seen = [sub.input_frames(t) for t in range(len(cols))]
    bar_w = min(0.2, 0.7 * frame_w)
    rng, cmap = np.random.default_rng(0), colormaps["magma"]
    for i in range(max(hi for _, hi in seen) + 1):
        for k, v in enumerate(rng.uniform(0.15, 0.95, 8)):
            cv.rect(x_of(i) - bar_w / 2, y - 0.4 + k * 0.1, bar_w, 0.1, cmap(v))
    cv.text(x_of(max(hi for _, hi in seen)) + bar_w / 2 + 0.3, y, "...", size=12, color="#444")
    top, apex = y + 0.45, y + 1.05
    for x0, (lo, hi) in zip(cols, seen):
        cv.polygon([(x_of(lo) - bar_w / 2, top), (x_of(hi) + bar_w / 2, top), (x0, apex)], facecolor=GREY,
                   alpha=0.12, edgecolor=GREY, linewidth=0.8, zorder=1)
        cv.arrow((x0, apex - 0.2), (x0, apex))
        cv.text(x0, y - 0.58, f"frames {lo + 1}-{hi + 1}" if hi > lo else f"frame {lo + 1}", size=8, color="#444")
    ms = 1000 * model.feature_shift
    left(y + 0.1, "features", f"{f.dim} {FEATURE_NAMES[f.kind]}, a frame every {ms:g} ms,\n{NORMALIZED[f.normalize]}"
         + ("\ncones: the frames each step sees" if isinstance(sub, ConvSubsampling) else ""))
    return apex


def _draw_layer(cv, system, index, layer, cols, dots_x, below, left, right) -> float:
    """One recurrent layer unrolled: its chain(s), recurrent arrows (an LSTM's cell state too),
    and the concat/norm row above. Returns the height at which the next row's arrows start."""
    model = system.model
    c, bi, lstm = model.cfg, layer.backward_rnn is not None, model.cfg.cell == "lstm"
    box_h = BOX_H + (0.16 if lstm else 0.0)
    y_f = below + 0.55 + box_h / 2
    chains = [(layer.forward_rnn, y_f, FORWARD, -OFFSET if bi else 0.0, +1)]
    if bi:
        chains.append((layer.backward_rnn, y_f + box_h + 0.4, BACKWARD, +OFFSET, -1))
    y_n = chains[-1][1] + box_h / 2 + 0.55  # the concat / norm row
    node = " + ".join((["concat"] if bi else []) + ([{"layer": "LN", "batch": "BN"}[c.norm]] if layer.norm else []))
    for rnn, yc, color, dx, direction in chains:
        mark = ("→" if direction > 0 else "←") if bi else ""  # which chain's state: →h(t) or ←h(t)
        states = [("h", yc + CELL_ROWS, 1.6, "-"), ("c", yc - CELL_ROWS, 1.2, "--")] if lstm else [("h", yc, 1.6, "-")]
        for t, x0 in enumerate(cols):
            x = x0 + dx
            cv.arrow((x, below), (x, yc - box_h / 2))
            cv.box(x, yc, BOX_W, box_h, color=color)
            for name, ys, _, _ in states:
                cv.text(x, ys, f"{mark}{name}({t + 1})", size=9 if not lstm else 8.5, color=color)
            if node:
                cv.arrow((x, yc + box_h / 2), (x, y_n - 0.15))
            else:  # nothing between this layer and the next: a plain line on
                cv.line([x, x], [yc + box_h / 2, y_n + 0.15], color=GREY, linewidth=1.1, zorder=2)
        x_in = cols[0] + dx  # W_x on the first step's input arrow, beside the forward box when backward
        cv.text(x_in - 0.07 * direction, (below + yc - box_h / 2) / 2 if direction > 0 else yc - box_h / 2 - 0.2,
                "W_x", size=7.5, color=color, ha="left" if direction < 0 else "right")
        for name, ys, width, style in states:  # the recurrent connections
            for t in range(STEPS - 1):
                a, b = (cols[t] + dx + BOX_W / 2, ys), (cols[t + 1] + dx - BOX_W / 2, ys)
                cv.arrow(*((a, b) if direction > 0 else (b, a)), color=color, width=width, style=style)
            ends = ((cols[-1] + dx + BOX_W / 2, ys), (dots_x - 0.2, ys))
            cv.arrow(*(ends if direction > 0 else ends[::-1]), color=color, width=width, style=style)
            if direction > 0:  # the state is 0 before t = 1
                start = cols[0] + dx - BOX_W / 2
                cv.arrow((start - 0.32, ys), (start, ys), color=color, width=width, style=style)
        h_y = states[0][1]
        cv.text((cols[0] + cols[1]) / 2 + dx, h_y + 0.04, "W_h", size=7.5, color=color, va="bottom")
        if direction > 0:
            cv.text(cols[0] + dx - BOX_W / 2 - 0.42, yc, "0", size=9, color=color)
        cv.text(dots_x, yc, "...", size=12, color=color)
        prev = "t-1" if direction > 0 else "t+1"
        label = f"h({prev}) -> h(t)" + (f", cell c({prev}) -> c(t) (dashed)" if lstm else "")
        label = (f"forward: {label}" if direction > 0 else f"backward: {label}") if bi else f"recurrence: {label}"
        right(yc, f"{label}\n{describe(rnn, model)}, {n_params(rnn):,} params", color)
    node_w = 2 * OFFSET + BOX_W if bi else BOX_W
    if node:
        for x0 in cols:
            cv.box(x0, y_n, node_w, 0.3, node, color=GREY, fill="#f4f4f4", size=8)
    parts = (["concat"] if bi else []) + ([describe(layer.norm, model)] if layer.norm is not None else [])
    text = " + ".join(parts) + (f", {n_params(layer.norm):,} params" if layer.norm is not None else "")
    if c.dropout:
        text += ("\n" if text else "") + f"then dropout {c.dropout:g}"
    if text:
        right(y_n, text, GREY)
    heads = [h for h in system.heads if h.layer == index]
    room = 0.0
    if heads:  # a training-only branch off this layer's output, above its own notes
        room = 0.15 * len(_head_lines(heads)) + 0.1
        _draw_heads(cv, heads, cols[-1] + node_w / 2, y_n, y_n + 0.25 + room / 2, dots_x, right)
    left((y_f + y_n) / 2 + 0.15, f"layer {index}",
         f"{describe(layer, model)}\nout {layer.out_dim} per step\n{n_params(layer):,} params")
    return y_n + 0.15 + room


def _head_lines(heads) -> list[str]:
    return [line for h in heads
            for line in textwrap.wrap(f"training only: {h.described()}", RIGHT_CHARS)]


def _draw_heads(cv, heads, x, y, y_text, dots_x, right) -> None:
    """A dashed branch from (x, y) to the notes of the training-only outputs there."""
    cv.arrow((x, y), (dots_x + 0.35, y_text), color=TRAINING, style="--", rad=0.2 if y_text > y else 0.0)
    right(y_text, "\n".join(_head_lines(heads)), TRAINING)


def _draw_equations(cv: _Canvas, model: AcousticModel, bottom: float) -> float:
    """The cell's equations in a box across the picture; returns its top."""
    lines = equations(model)
    step = 0.2
    height = step * len(lines) + 0.2
    cv.box(WIDTH / 2, bottom + height / 2, WIDTH - 0.5, height, color="#999999", fill="#fafafa")
    for i, line in enumerate(lines):
        cv.text(0.45, bottom + height - 0.2 - i * step, line, size=8.5, ha="left", color="#222",
                weight="bold" if i == 0 else "normal")
    return bottom + height


def save_diagram(systems: list[System], out: str | Path, heading: str = "") -> Path:
    """The systems one above the other under ``heading`` (``systems_figure``)."""
    out = image_path(out)  # an unknown suffix is refused before any drawing
    out.parent.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "asr"}):  # SVG text stays text
        metadata = {"Date": None} if out.suffix.lower() in (".svg", ".pdf") else None  # reproducible files
        systems_figure(systems, heading).savefig(out, dpi=110, metadata=metadata)
    return out
