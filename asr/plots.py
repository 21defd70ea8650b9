"""Pictures of what a model does: one utterance's waveform, features, CTC posteriorgram and
word alignment on one time axis; training curves from a run's log.jsonl; a posteriorgram
for TensorBoard.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never pyplot: no
display, no global state, safe inside a training loop.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from asr.audio import audio_info
from asr.decoding import GreedyDecoder
from asr.metrics import selection_key
from asr.text import plural
from asr.user_warnings import warn


class PlotError(ValueError):
    pass


def image_path(out: str | Path) -> Path:
    """The output path, checked before any work is done: the format follows the suffix."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise PlotError(f"{out}: unsupported image format (use .png, .svg or .pdf)")
    return out


def save_figure(fig: Figure, out: str | Path, dpi: int = 100) -> Path:
    out = image_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # a renderer for formats that need one; savefig switches as needed
    fig.savefig(out, dpi=dpi)
    return out


def figure_to_array(fig: Figure) -> np.ndarray:
    """(H, W, 3) uint8 RGB, e.g. for TensorBoard's add_image."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def token_labels(tokens) -> list[str]:
    return ["blank" if i == 0 else ("| (space)" if t == "|" else t) for i, t in enumerate(tokens)]


MAX_TOKEN_ROWS = 40  # more (BPE pieces, phones with a big lexicon) and their labels would overlap
SHOWN_ABOVE = 0.05  # with more tokens, a row is drawn if its token ever gets more probability than this


def draw_posteriorgram(ax, log_probs: torch.Tensor, tokens, frame_shift: float, offset: float = 0.0,
                       centre: float = 0.0, label: str = "token"):
    """Token probabilities (rows, blank on top) over output frames (columns, in seconds from
    ``offset``, frame k centred at ``centre + k * frame_shift``). Of more than MAX_TOKEN_ROWS
    tokens only the blank and those that ever exceed SHOWN_ABOVE are drawn; the label says so."""
    probs = log_probs.detach().float().exp().cpu().numpy().T  # (V, T)
    V, T = probs.shape
    rows = np.arange(V)
    if V > MAX_TOKEN_ROWS:
        rows = np.flatnonzero((probs.max(axis=1) > SHOWN_ABOVE) | (rows == 0))
        label += f"\n({len(rows)} of {V} shown; the rest never exceed {SHOWN_ABOVE:.0%})"
    start = offset + centre - frame_shift / 2
    image = ax.imshow(probs[rows], aspect="auto", interpolation="nearest", cmap="Greys", vmin=0.0, vmax=1.0,
                      extent=(start, start + T * frame_shift, len(rows) - 0.5, -0.5))
    ax.set_yticks(range(len(rows)))
    labels = token_labels(tokens)
    ax.set_yticklabels([labels[i] for i in rows], fontsize=max(5, min(9, 260 // max(len(rows), 1))),
                       family="monospace")
    ax.set_ylabel(label)
    return image


def posteriorgram_figure(log_probs: torch.Tensor, tokens, frame_shift: float, title: str = "",
                         centre: float = 0.0) -> Figure:
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.add_subplot()
    fig.colorbar(draw_posteriorgram(ax, log_probs, tokens, frame_shift, centre=centre), ax=ax,
                 label="probability", pad=0.01)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title, fontsize=9, loc="left", family="monospace")
    return fig


# --- one utterance ---------------------------------------------------------------------------

# Longer, and the figure (at most 24 inches wide) packs the words too tightly to read, while the
# drawing takes minutes (3 min of audio: 2 min, 1.8 GB); transcribe runs pieces of at most 20 s.
MAX_PLOT_SECONDS = 60.0


def alignment_figure(wave: torch.Tensor, sample_rate: int, feats: torch.Tensor, feat_shift: float,
                     feat_name: str, log_probs: torch.Tensor, frame_shift: float, tokens, words,
                     title: str = "", offset: float = 0.0, centre: float = 0.0) -> Figure:
    """Waveform, features, posteriorgram and word spans, stacked on a shared time axis; ``wave``
    starts ``offset`` seconds into its file (word times are the file's); output frame k is
    centred ``centre + k * frame_shift`` seconds after feature frame 0 (the model's ``frame_centre``)."""
    duration = wave.numel() / sample_rate
    width = float(np.clip(4 + 1.6 * duration, 10, 24))
    fig = Figure(figsize=(width, 9.5), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1.6, 2.6, 0.55])
    ax_wave, ax_feat, ax_post, ax_words = axes

    t = offset + np.arange(wave.numel()) / sample_rate
    ax_wave.plot(t, wave.cpu().numpy(), linewidth=0.4, color="#1f77b4")
    ax_wave.set_ylabel("waveform")
    ax_wave.margins(y=0.05)

    f = feats.detach().float().cpu().numpy().T  # (dim, frames)
    feat_image = ax_feat.imshow(f, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                   extent=(offset - feat_shift / 2, offset + (f.shape[1] - 0.5) * feat_shift, -0.5, f.shape[0] - 0.5))
    ax_feat.set_ylabel(f"{feat_name}\n(model input)")
    fig.colorbar(feat_image, ax=ax_feat, pad=0.005, fraction=0.02)

    post_image = draw_posteriorgram(ax_post, log_probs, tokens, frame_shift, offset, centre,
                                    label=f"token\n(CTC posteriors, {1000 * frame_shift:.0f} ms frames)")
    fig.colorbar(post_image, ax=ax_post, pad=0.005, fraction=0.02, label="probability")

    ax_words.set_yticks([])
    ax_words.set_ylabel("words")
    colors = ("#c6dbef", "#fdd0a2")
    rows = _word_rows(words, (width - 1.8) / max(duration, 1e-9))
    for i, (w, row) in enumerate(zip(words, rows)):
        ax_words.axvspan(w.start, w.end, color=colors[i % 2])
        ax_words.text((w.start + w.end) / 2, 1 - (row + 0.5) / (max(rows) + 1), w.word, ha="center", va="center",
                      fontsize=WORD_POINTS, clip_on=True, transform=ax_words.get_xaxis_transform())
        for ax in (ax_wave, ax_feat, ax_post):
            ax.axvline(w.start, color="#2ca02c", linewidth=0.6, alpha=0.7)
            ax.axvline(w.end, color="#d62728", linewidth=0.6, alpha=0.7)
    if not words:
        ax_words.text(0.5, 0.5, "(no words recognized)", ha="center", va="center",
                      transform=ax_words.transAxes, color="#666")
    ax_words.set_xlim(offset, offset + duration)
    ax_words.set_xlabel("time (s)")
    if title:  # wrapped: a long HYP would push the notes after it off the figure
        chars = int(width * 72 / (0.6 * 10)) - 4  # monospace 10 pt: 0.6 em a character
        title = "\n".join(textwrap.fill(line, chars, subsequent_indent="  ") for line in title.split("\n"))
        fig.suptitle(title, fontsize=10, x=0.01, ha="left", family="monospace")
    return fig


WORD_POINTS, WORD_ROWS = 10, 3


def _word_rows(words, inches_per_second: float) -> list[int]:
    """A row (0: the top) for each word's label: the first whose last label ends before this one
    starts, so that fast speech's labels, wider than their words, do not run into each other."""
    ends, rows = [], []
    for w in words:
        half = len(w.word) * 0.62 * WORD_POINTS / 72 / inches_per_second / 2 + 0.02  # seconds, proportional font
        middle = (w.start + w.end) / 2
        row = next((r for r, end in enumerate(ends) if end <= middle - half), None)
        if row is None:  # a new row, or (all rows full) the one that ends first
            row = len(ends) if len(ends) < WORD_ROWS else min(range(len(ends)), key=ends.__getitem__)
            ends += [0.0] * (row + 1 - len(ends))
        ends[row] = middle + half
        rows.append(row)
    return rows or [0]


def plot_alignment(transcriber, audio_path: str | Path, out: str | Path) -> Path:
    """Run the transcriber's model on one file and draw what it saw and said.

    Word spans are ``Result.words`` (whatever timing the transcriber gives them); the
    posteriorgram and features come from calling the model directly on the same waveform.
    """
    path, out = Path(audio_path), image_path(out)
    info = audio_info(path)  # AudioError names the file: missing, unreadable
    model, rate = transcriber.model, transcriber.sample_rate
    if info.sample_rate < rate:
        raise PlotError(f"{path}: recorded at {info.sample_rate} Hz, but the model expects {rate} Hz; "
                        "upsampling cannot restore the missing band, so the plot would mislead")
    wave = transcriber.load(path)
    if wave.numel() < round(model.frame_shift * rate):
        raise PlotError(f"{path}: {wave.numel() / rate:.3f} s is shorter than one output frame "
                        f"({model.frame_shift:.3f} s)")
    # the posteriors of what transcribe runs: the file without its long quiet edges, run whole
    # (transcribe also cuts it at pauses: its words are taken from transcribe, the title says so)
    if (span := transcriber.speech_span(wave)) is None:
        steady = not transcriber.segmenter.is_quiet(wave.numpy())
        raise PlotError(f"{path}: {transcriber.no_speech(steady)}: nothing to plot (transcribe gives no words)")
    lo, hi = span
    if (hi - lo) / rate > MAX_PLOT_SECONDS:
        raise PlotError(f"{path}: {(hi - lo) / rate:.1f} s of sound; an alignment plot is readable for at most "
                        f"{MAX_PLOT_SECONDS:g} s: plot a piece (e.g. sox {path} piece.wav trim START 20)")
    full, wave, offset = wave.numel(), wave[lo:hi], lo / rate
    result = transcriber.transcribe(path)  # words on the file's clock, as `asr transcribe` gives them
    words = result.words
    note = ""
    if lo or hi < full:
        note += f"   (quiet edges cut: {offset:.2f}-{hi / rate:.2f} s)"
    if len(result.segments) > 1:
        note += (f"   (words: transcribe's, which it gives in {len(result.segments)} segments; "
                 "posteriors: the sound run whole)")
    device = next(model.parameters()).device
    waves, lengths = wave[None].to(device), torch.tensor([wave.numel()], device=device)
    with torch.inference_mode():
        feats, feat_lengths = model.frontend(waves, lengths)
        log_probs, out_lengths = model(waves, lengths)
    kind = model.features_cfg.kind
    name = {"fbank": "log-mel bin", "mfcc": "MFCC", "spectrogram": "frequency bin"}[kind]
    title = f"{path.name}   HYP: {result.text or '(empty)'}{note}"
    if (systems := getattr(transcriber, "systems", None)) is not None:  # asr.rescoring's transcriber
        title += (f"\nwords: n-best rescoring of {plural(len(systems), 'system')} (as "
                  f"transcribe); posteriors: system 1 ({transcriber.loaded.path.name}), the words aligned to them")
    fig = alignment_figure(wave, rate, feats[0, : feat_lengths[0]], model.feature_shift, name,
                           log_probs[0, : out_lengths[0]], model.frame_shift, transcriber.tokenizer.tokens,
                           words, title=title, offset=offset, centre=model.frame_centre)
    return save_figure(fig, out)


# --- training curves -------------------------------------------------------------------------

def read_training_log(run_dir: str | Path) -> list[dict]:
    """log.jsonl of a run, one record per epoch (a resumed run's repeated epoch: the last one)."""
    return _read_log(run_dir)[0]


def _read_log(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(a run's epoch records, the records of its weight averages, each with the epoch it came
    after as "after"). A resumed run may have logged an average before its epochs went on."""
    run_dir = Path(run_dir)
    path = run_dir if run_dir.is_file() else run_dir / "log.jsonl"
    if not path.is_file():
        raise PlotError(f"{path}: training log not found (expected RUN_DIR/log.jsonl)")
    by_epoch: dict[int, dict] = {}
    averages: list[dict] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PlotError(f"{path}: not a training log (not UTF-8 text: byte {e.object[e.start]:#04x} at "
                        f"{e.start})") from None
    lines = text.splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if (problem := _bad_values(record)) is not None:  # would fail deep in the drawing
                raise PlotError(f"{path}:{lineno}: {problem}")
            if "averaged" in record:  # an end-of-run weight average, not an epoch
                averages.append({**record, "after": max(by_epoch, default=0)})
                continue
            epoch = int(record["epoch"])
            by_epoch[epoch] = record
            # an epoch trained again: what was logged after it the first time is gone, as it is from best/'s ranking
            averages = [a for a in averages if a["after"] < epoch]
        except PlotError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if lineno == len(lines) and not text.endswith("\n"):  # a record still being written, or cut off
                warn(path, f"line {lineno} is incomplete (being written, or the run stopped while writing it): "
                           "left out")
                continue
            raise PlotError(f"{path}:{lineno}: not a training log record (JSON with an 'epoch')") from None
    if not by_epoch:
        raise PlotError(f"{path}: no epochs logged yet")
    return [by_epoch[e] for e in sorted(by_epoch)], averages


METRICS = ("train_loss", "valid_loss", "valid_wer", "valid_cer")


def _bad_values(record) -> str | None:
    """What a record holds that no training logs (a hand edit, another tool's file); None if fine.
    NaN is a value training writes (nothing scored, no step); an infinity or a string is not."""
    if not isinstance(record, dict):
        return "not a training log record (JSON with an 'epoch')"
    for key in METRICS:
        value = record.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value):
            return f"{key} is {json.dumps(value)}, not a number (or NaN)"
    if "averaged" in record and not isinstance(record["averaged"], list):
        return f"averaged is {json.dumps(record['averaged'])}, not the list of epochs averaged"
    return None


def _best(records: list[dict], averages: list[dict]) -> tuple[float, float, str] | None:
    """(epoch, WER %, label) of the model best/ holds, found as training found it: the epochs and
    averages in the order they were logged, an epoch taking best/ when it ranks strictly first
    (asr.metrics.selection_key), an average when its record says it did."""
    events = sorted([(r["epoch"], 0, r) for r in records] + [(a["after"], 1, a) for a in averages],
                    key=lambda event: event[:2])
    star, best = None, None
    for epoch, is_average, r in events:
        key = selection_key({**r, "epoch": epoch}) if "valid_wer" in r else None
        if key is None or (is_average and not r.get("best")):
            continue
        if is_average or best is None or key < best:
            best = key
            star = (epoch, r["valid_wer"] * 100,
                    f"the average of {len(r['averaged'])} epochs" if is_average else f"epoch {epoch}")
    return None if star is None else (star[0], star[1], f"best {star[1]:.1f}%, {star[2]}")


def training_figure(records: list[dict], title: str = "", averages: list[dict] = ()) -> Figure:
    """Loss and validation error curves; the star marks the model best/ holds (``_best``: an epoch
    ranked as training ranks it, by WER, then CER, then loss, epochs validation could not score
    left out; or a weight average, of ``_read_log``'s, that became best/ and stayed it)."""
    epochs = [r["epoch"] for r in records]
    series = lambda key: [r.get(key, np.nan) for r in records]  # noqa: E731
    has_valid = any("valid_wer" in r for r in records)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_err = fig.subplots(1, 2)
    style = {"marker": "o", "markersize": 3, "linewidth": 1.5}
    ax_loss.plot(epochs, series("train_loss"), label="train" + _not_drawn(records, "train_loss"), **style)
    if any("valid_loss" in r for r in records):
        ax_loss.plot(epochs, series("valid_loss"), label="valid" + _not_drawn(records, "valid_loss"), **style)
    ax_loss.set(xlabel="epoch", ylabel="CTC loss per utterance", title="loss")
    ax_loss.legend()
    if has_valid:
        keys = [selection_key(r) if "valid_wer" in r else None for r in records]
        scored = np.array([k is not None for k in keys])  # nothing scored: its 0/0 "WER" is not drawn
        wer = np.where(scored, np.array(series("valid_wer"), dtype=float) * 100, np.nan)
        cer = np.where(scored, np.array(series("valid_cer"), dtype=float) * 100, np.nan)
        star = _best(records, list(averages))
        ax_err.plot(epochs, wer, label=f"WER ({star[2] if star else 'nothing scored'})", **style)
        ax_err.plot(epochs, cer, label="CER", **style)
        if star is not None:
            ax_err.plot([star[0]], [star[1]], marker="*", markersize=14, color="#d62728", linestyle="none")
        top = np.nanmax(wer) if scored.any() else 100.0
        ax_err.set_ylim(bottom=0, top=max(100.0, float(top)) * 1.08)
        ax_err.legend(loc="best")  # not over the best epoch's star
    else:
        ax_err.text(0.5, 0.5, "no validation set in this run", ha="center", va="center",
                    transform=ax_err.transAxes, color="#666")
    ax_err.set(xlabel="epoch", ylabel="error rate (%)", title="validation error rates (greedy)")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        # the run's epochs, whatever was drawn: with no finite value, matplotlib would show epoch 0 alone
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs: no 0.98 after one
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _not_drawn(records: list[dict], key: str, shown: int = 4) -> str:
    """" (not drawn: nan at epochs 2, 5)": the logged values a line cannot show (a NaN train_loss is
    an epoch in which no step trained), which would otherwise be a silent gap."""
    groups: dict[str, list[int]] = {}
    for r in records:
        if isinstance(v := r.get(key), (int, float)) and not math.isfinite(v):
            groups.setdefault(f"{v:g}", []).append(r["epoch"])
    if not groups:
        return ""
    parts = []
    for value, epochs in groups.items():
        if len(epochs) == len(records) > 1:
            parts.append(f"{value} at every epoch")
        else:
            listed = ", ".join(map(str, epochs[:shown])) + (", ..." if len(epochs) > shown else "")
            parts.append(f"{value} at epoch{'s' if len(epochs) > 1 else ''} {listed}")
    return f" (not drawn: {'; '.join(parts)})"


def plot_training(run_dir: str | Path, out: str | Path) -> Path:
    out = image_path(out)
    records, averages = _read_log(run_dir)
    return save_figure(training_figure(records, title=str(run_dir), averages=averages), out)


# --- TensorBoard -----------------------------------------------------------------------------

@torch.no_grad()
def log_posteriorgram(writer, model, dataset, tokenizer, step: int, index: int = 0,
                      tag: str = "valid/posteriorgram") -> None:
    """Add one validation utterance's posteriorgram, titled with its reference and greedy
    hypothesis, as an image. The same utterance every epoch, so one can watch it learn."""
    example = dataset[index]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    wave = example.waveform[None].to(device)
    log_probs, lengths = model(wave, torch.tensor([wave.shape[1]], device=device))
    model.train(was_training)
    log_probs, lengths = log_probs.cpu(), lengths.cpu()
    hyp = GreedyDecoder(tokenizer).decode(log_probs, lengths)[0].text
    # an utterance with no labels (asr.data.SpeechDataset's keep_unspellable) shows its transcript
    ref = dataset.texts[index] if example.targets is None else tokenizer.decode(example.targets.tolist())
    fig = posteriorgram_figure(log_probs[0, : lengths[0]], tokenizer.tokens, model.frame_shift,
                               title=f"REF: {ref}\nHYP: {hyp}", centre=model.frame_centre)
    writer.add_image(tag, figure_to_array(fig), step, dataformats="HWC")
