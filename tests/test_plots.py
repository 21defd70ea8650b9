"""Plots: one utterance's alignment, training curves, the TensorBoard posteriorgram."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from matplotlib.image import imread

from asr.cli import main
from asr.data import SpeechDataset, Utterance
from asr.model_dir import load_model_dir
from asr.plots import PlotError, log_posteriorgram, read_training_log, training_figure
from conftest import write_sine


def speechlike(path, seconds, sample_rate=16000):
    """A tone whose pitch and loudness move, so every panel has something to show."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.4 * np.sin(2 * np.pi * (200 + 150 * np.sin(3 * t)) * t) * (0.5 + 0.5 * np.sin(5 * t) ** 2)
    sf.write(str(path), wave.astype(np.float32), sample_rate)
    return path


def test_plot_alignment_writes_a_png_whose_width_grows_with_the_audio(tiny_model_dir, tmp_path, capsys):
    sizes = {}
    for seconds in (1.5, 9.0):
        audio = speechlike(tmp_path / f"{seconds}.wav", seconds)
        out = tmp_path / f"{seconds}.png"
        assert main(["plot", "alignment", str(audio), "--model", str(tiny_model_dir), "--device", "cpu",
                     "-o", str(out)]) == 0
        image = imread(out)
        assert image[..., :3].std() > 0.05  # not a blank canvas
        sizes[seconds] = image.shape[:2]
    assert sizes[1.5] == (950, 1000)  # 10 x 9.5 inches at 100 dpi for short clips
    assert sizes[9.0][0] == 950 and sizes[9.0][1] > sizes[1.5][1]
    assert str(tmp_path / "9.0.png") in capsys.readouterr().out


def test_plot_alignment_of_a_missing_file_names_it(tiny_model_dir, tmp_path, capsys):
    assert main(["plot", "alignment", str(tmp_path / "absent.wav"), "--model", str(tiny_model_dir),
                 "-o", str(tmp_path / "out.png")]) == 2
    assert f"{tmp_path / 'absent.wav'}: file not found" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_plot_alignment_refuses_audio_recorded_below_the_model_rate(tiny_model_dir, tmp_path, capsys):
    audio = write_sine(tmp_path / "phone.wav", seconds=1.0, sample_rate=8000)
    assert main(["plot", "alignment", str(audio), "--model", str(tiny_model_dir),
                 "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "phone.wav" in err and "8000 Hz" in err and "16000 Hz" in err


def test_plot_alignment_refuses_an_unknown_image_format(tiny_model_dir, tmp_path, capsys):
    audio = write_sine(tmp_path / "a.wav", seconds=0.5)
    assert main(["plot", "alignment", str(audio), "--model", str(tiny_model_dir),
                 "-o", str(tmp_path / "out.jpg")]) == 2
    assert "out.jpg" in capsys.readouterr().err


def write_log(run_dir, epochs, extra_lines=()):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"epoch": e, "train_loss": 100 / e, "valid_loss": 120 / e, "valid_wer": 1 / (1 + e),
                         "valid_cer": 0.5 / (1 + e), "lr": 1e-3}) for e in epochs]
    (run_dir / "log.jsonl").write_text("\n".join(lines + list(extra_lines)) + "\n")


def test_plot_training_draws_the_curves_of_a_run(tmp_path):
    write_log(tmp_path / "run", range(1, 8))
    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "curves.png")]) == 0
    image = imread(tmp_path / "curves.png")
    assert image.shape[:2] == (420, 1100)  # 11 x 4.2 inches at 100 dpi
    assert image[..., :3].std() > 0.05


@pytest.mark.parametrize("epochs", [[1], [1, 2], range(1, 31)])
def test_the_epoch_axis_has_whole_epochs_only(tmp_path, epochs):
    write_log(tmp_path / "run", epochs)
    fig = training_figure(read_training_log(tmp_path / "run"))
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_a_resumed_run_that_logged_an_epoch_twice_is_plotted_with_the_later_record(tmp_path):
    write_log(tmp_path / "run", [1, 2, 3, 3, 4])
    records = read_training_log(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]


def test_the_weight_average_record_at_the_end_of_a_run_is_not_an_epoch(tmp_path):
    write_log(tmp_path / "run", [1, 2, 3], [json.dumps({"averaged": ["epoch-002", "epoch-003"], "valid_loss": 30.0,
                                                           "valid_wer": 0.2, "valid_cer": 0.1})])
    assert [r["epoch"] for r in read_training_log(tmp_path / "run")] == [1, 2, 3]


def test_a_bad_training_log_is_a_clear_error_naming_the_line(tmp_path, capsys):
    write_log(tmp_path / "run", [1, 2], extra_lines=["{not json"])
    with pytest.raises(PlotError, match=r"log.jsonl:3"):
        read_training_log(tmp_path / "run")
    assert main(["plot", "training", str(tmp_path / "nothing"), "-o", str(tmp_path / "c.png")]) == 2
    assert "log.jsonl: training log not found" in capsys.readouterr().err


@pytest.mark.parametrize("record, said", [
    ('{"epoch": 2, "train_loss": 1, "valid_loss": 3, "valid_wer": "abc", "valid_cer": 0.5}', 'valid_wer is "abc"'),
    ('{"epoch": 2, "train_loss": 1, "valid_loss": 3, "valid_wer": null, "valid_cer": 0.5}', "valid_wer is null"),
    ('{"epoch": 2, "train_loss": 1, "valid_loss": 3, "valid_wer": Infinity, "valid_cer": 0.5}',
     "valid_wer is Infinity"),
    ('{"averaged": 3, "valid_loss": 3, "valid_wer": 0.5, "valid_cer": 0.3, "best": true}', "averaged is 3"),
])
def test_a_training_log_record_with_values_training_never_writes_is_named_not_a_traceback(tmp_path, capsys,
                                                                                          record, said):
    write_log(tmp_path / "run", [1], extra_lines=[record])
    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "c.png")]) == 2
    assert capsys.readouterr().err.startswith(f"asr: {tmp_path / 'run' / 'log.jsonl'}:2: {said}")
    (tmp_path / "run" / "log.jsonl").write_bytes(b"\xff\xfe garbage\n")
    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "c.png")]) == 2
    assert "log.jsonl: not a training log (not UTF-8 text" in capsys.readouterr().err


def test_a_log_with_a_wer_but_no_cer_or_loss_is_plotted_ranked_by_wer(tmp_path):
    # (another tool's log, or a hand-made one: it was a KeyError deep in the drawing)
    write_log(tmp_path / "run", [1], extra_lines=['{"epoch": 2, "train_loss": 1, "valid_wer": 0.1}'])
    from asr.plots import _read_log

    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "c.png")]) == 0
    records, averages = _read_log(tmp_path / "run")
    assert _wer_legend(training_figure(records, averages=averages)) == "WER (best 10.0%, epoch 2)"


def test_a_partial_last_line_of_a_training_log_is_left_out_with_a_warning(tmp_path, capsys):
    # a run writing its next record, or stopped while it wrote it: the epochs before still plot
    write_log(tmp_path / "run", [1, 2])
    with open(tmp_path / "run" / "log.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')
    assert [r["epoch"] for r in read_training_log(tmp_path / "run")] == [1, 2]
    assert "log.jsonl: line 3 is incomplete" in capsys.readouterr().err
    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "c.png")]) == 0


def test_epochs_whose_losses_are_nan_keep_their_place_on_the_axis_and_are_named_in_the_legend(tmp_path):
    nan = float("nan")
    records = [{"epoch": e, "train_loss": nan, "valid_loss": nan, "valid_wer": nan, "valid_cer": nan}
               for e in (1, 2)]
    fig = training_figure(records)
    for ax in fig.axes:  # nothing finite to draw: the axis showed epoch 0 alone
        assert ax.get_xlim()[0] < 1 and ax.get_xlim()[1] > 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "train (not drawn: nan at every epoch)", "valid (not drawn: nan at every epoch)"]
    records = [{"epoch": e, "train_loss": nan if e == 2 else 1.0 / e} for e in (1, 2, 3)]
    assert fig_texts(training_figure(records)) >= {"train (not drawn: nan at epoch 2)"}


def fig_texts(fig):
    return {t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()}


def test_plot_alignment_refuses_more_than_a_minute_of_sound_naming_the_file(tiny_model_dir, tmp_path, capsys):
    # 3 min took 2 min and 1.8 GB to draw, its words packed too tightly to read
    audio = speechlike(tmp_path / "long.wav", 61.0)
    assert main(["plot", "alignment", str(audio), "--model", str(tiny_model_dir), "--device", "cpu",
                 "-o", str(tmp_path / "out.png")]) == 2
    assert f"{audio}: 61.0 s of sound; an alignment plot is readable for at most 60 s" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


class FakeWriter:
    def __init__(self):
        self.images = []

    def add_image(self, tag, image, step, dataformats="CHW"):
        self.images.append((tag, image, step, dataformats))


def test_tensorboard_gets_one_validation_posteriorgram_and_the_model_stays_in_training_mode(
        tiny_model_dir, tmp_path):
    loaded = load_model_dir(tiny_model_dir)
    wav = write_sine(tmp_path / "a.wav", seconds=0.8)
    dataset = SpeechDataset([Utterance(str(wav), 0.8, "hello world")], loaded.tokenizer, 16000)
    model = loaded.model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    writer = FakeWriter()
    log_posteriorgram(writer, model, dataset, loaded.tokenizer, step=3)
    [(tag, image, step, layout)] = writer.images
    assert (tag, step, layout) == ("valid/posteriorgram", 3, "HWC")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _wer_legend(fig):
    return next(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
                if t.get_text().startswith("WER"))


def test_the_star_marks_the_model_training_kept_as_best(tmp_path):
    from asr.plots import _read_log

    lines = [{"epoch": 1, "train_loss": 100, "valid_loss": 80, "valid_wer": 0.5, "valid_cer": 0.40},
             {"epoch": 2, "train_loss": 90, "valid_loss": 70, "valid_wer": 0.5, "valid_cer": 0.30},  # tie: lower CER
             {"epoch": 3, "train_loss": 85, "valid_loss": float("nan"), "valid_wer": float("nan"),
              "valid_cer": float("nan")},  # nothing scored
             {"epoch": 4, "train_loss": 80, "valid_loss": float("nan"), "valid_wer": 0.5, "valid_cer": 0.30}]  # no loss
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    records, averages = _read_log(tmp_path)
    assert _wer_legend(training_figure(records, averages=averages)) == "WER (best 50.0%, epoch 2)"  # nor 4, tied
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write(json.dumps({"averaged": ["epoch-001", "epoch-002"], "valid_loss": 60, "valid_wer": 0.45,
                            "valid_cer": 0.28, "best": True}) + "\n")
    records, averages = _read_log(tmp_path)
    assert _wer_legend(training_figure(records, averages=averages)) == "WER (best 45.0%, the average of 2 epochs)"


def test_plot_alignment_explains_the_words_transcribe_gives_on_the_file_s_clock(tmp_path, monkeypatch):
    import soundfile as sf

    import asr.plots as plots
    from asr.plots import plot_alignment
    from asr.transcribe import load_model
    from conftest import REPO_ROOT

    audio, rate = sf.read(str(REPO_ROOT / "examples" / "speechocean762_000030012.flac"), dtype="float32")
    padded = tmp_path / "padded.wav"  # 3 s of silence before: transcribe cuts it, so must the plot
    sf.write(str(padded), np.concatenate([np.zeros(3 * rate, np.float32), audio, np.zeros(2 * rate, np.float32)]),
             rate)
    transcriber = load_model(decoder="greedy", device="cpu")
    expected = transcriber.transcribe(str(padded))
    drawn = {}
    figure = plots.alignment_figure
    monkeypatch.setattr(plots, "alignment_figure", lambda *a, **k: drawn.update(k, words=a[8]) or figure(*a, **k))
    plot_alignment(transcriber, padded, tmp_path / "a.png")
    assert drawn["title"].startswith(f"padded.wav   HYP: {expected.text}   (quiet edges cut: ")
    assert [(w.word, w.start) for w in drawn["words"]] == [(w.word, w.start) for w in expected.words]
    assert drawn["offset"] > 2.0


def _drawn_figure(monkeypatch):
    """What plot_alignment hands to alignment_figure, and the figure it gets back."""
    import asr.plots as plots

    drawn, figure = {}, plots.alignment_figure

    def capture(*a, **k):
        drawn.update(k, words=a[8], figure=figure(*a, **k))
        return drawn["figure"]
    monkeypatch.setattr(plots, "alignment_figure", capture)
    return drawn


def test_plot_alignment_of_the_built_in_package_shows_the_rescored_words_transcribe_gives(tmp_path, monkeypatch,
                                                                                         capsys):
    from conftest import REPO_ROOT

    audio = REPO_ROOT / "examples" / "speechocean762_000030012.flac"  # its system 1 alone says "see if"
    assert main(["transcribe", str(audio), "--device", "cpu"]) == 0
    transcribed = capsys.readouterr().out.strip().split("\t")[-1]
    drawn = _drawn_figure(monkeypatch)
    assert main(["plot", "alignment", str(audio), "--device", "cpu", "-o", str(tmp_path / "a.png")]) == 0
    first, second = drawn["title"].split("\n")
    assert first == f"{audio.name}   HYP: {transcribed}"
    assert " ".join(w.word for w in drawn["words"]) == transcribed
    assert second.startswith("words: n-best rescoring of 4 systems (as transcribe); posteriors: system 1 (default)")


def test_a_posteriorgram_of_many_tokens_shows_only_the_blank_and_the_tokens_that_get_probability():
    from matplotlib.figure import Figure

    from asr.plots import draw_posteriorgram

    tokens = ["<blank>", "|", *(f"p{i}" for i in range(149))]
    probs = torch.full((20, 151), 1e-4)
    probs[:, 0] = 1.0
    probs[5, 40], probs[9, 7], probs[12, 3] = 50.0, 2.0, 0.01  # 0.96, 0.3, then never above 5%
    ax = Figure().add_subplot()
    draw_posteriorgram(ax, (probs / probs.sum(-1, keepdim=True)).log(), tokens, 0.04)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blank", "p5", "p38"]
    assert "3 of 151 shown; the rest never exceed 5%" in ax.get_ylabel()
    few = Figure().add_subplot()
    draw_posteriorgram(few, probs[:, :29].log_softmax(-1), tokens[:29], 0.04)  # characters: every row
    assert len(few.get_yticklabels()) == 29 and "shown" not in few.get_ylabel()


@pytest.mark.parametrize("subsampling", ["conv", "stack"])
def test_each_posteriorgram_column_is_centred_on_the_feature_frames_its_step_sees(tmp_path, monkeypatch, subsampling):
    from asr.config import Config, ModelConfig
    from asr.model import AcousticModel
    from asr.model_dir import save_model_dir
    from asr.plots import plot_alignment
    from asr.text import CharTokenizer
    from asr.transcribe import load_model

    cfg = Config(model=ModelConfig(subsampling=subsampling, num_layers=1, hidden_size=8, conv_channels=2))
    tokenizer = CharTokenizer.build(["hello world"])
    model = AcousticModel(cfg.features, cfg.model, len(tokenizer))
    transcriber = load_model(save_model_dir(tmp_path / "m", cfg, model, tokenizer), decoder="greedy", device="cpu")
    drawn = _drawn_figure(monkeypatch)
    plot_alignment(transcriber, speechlike(tmp_path / "a.wav", 1.5), tmp_path / "a.png")
    axes = drawn["figure"].axes
    feat_ax, post_ax = axes[1], next(ax for ax in axes if ax.get_ylabel().startswith("token"))
    feat_left, feat_right = feat_ax.images[0].get_extent()[:2]
    feat_shift = (feat_right - feat_left) / feat_ax.images[0].get_array().shape[1]
    left, right = post_ax.images[0].get_extent()[:2]
    shift = model.frame_shift
    assert right - left == pytest.approx(post_ax.images[0].get_array().shape[1] * shift)
    for k in (3, 7):
        lo, hi = model.subsampling.input_frames(k)
        feature_centre = feat_left + feat_shift * ((lo + hi) / 2 + 0.5)  # feature frame i spans feat_left + i * shift
        assert left + (k + 0.5) * shift == pytest.approx(feature_centre)


def test_plot_alignment_of_a_file_transcribe_cuts_at_pauses_shows_transcribe_s_words_and_says_so(tmp_path,
                                                                                                monkeypatch):
    from conftest import REPO_ROOT

    from asr.plots import plot_alignment
    from asr.transcribe import load_model

    audio, rate = sf.read(str(REPO_ROOT / "examples" / "speechocean762_000030012.flac"), dtype="float32")
    three = tmp_path / "three.wav"  # three utterances, a second apart: transcribe runs each on its own
    sf.write(str(three), np.concatenate([audio, np.zeros(rate, np.float32)] * 3), rate)
    transcriber = load_model(decoder="greedy", device="cpu")
    expected = transcriber.transcribe(str(three))
    assert len(expected.segments) == 3
    drawn = _drawn_figure(monkeypatch)
    plot_alignment(transcriber, three, tmp_path / "a.png")
    assert [(w.word, w.start, w.end) for w in drawn["words"]] == [(w.word, w.start, w.end) for w in expected.words]
    assert f"HYP: {expected.text}" in drawn["title"] and "which it gives in 3 segments" in drawn["title"]


def test_a_long_alignment_title_is_wrapped_inside_the_figure_so_its_notes_are_not_cut_off():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from asr.plots import alignment_figure
    from asr.results import Word

    hyp = " ".join(["mark is going to see elephant"] * 10)
    title = f"long.wav   HYP: {hyp}   (quiet edges cut: 0.30-30.10 s)\nwords: system 1"
    fig = alignment_figure(torch.zeros(16000), 16000, torch.zeros(101, 8), 0.01, "log-mel bin",
                           torch.zeros(26, 3).log_softmax(-1), 0.04, ["<blank>", "|", "a"],
                           [Word("a", 0.2, 0.4)], title=title)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig._suptitle.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    assert "(quiet edges cut: 0.30-30.10 s) words: system 1" in " ".join(fig._suptitle.get_text().split())


def test_the_word_labels_of_fast_speech_do_not_run_into_each_other():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from asr.plots import alignment_figure
    from asr.results import Word

    seconds, rate = 30, 16000
    words = [Word(w, 0.5 + 0.2 * i, 0.5 + 0.2 * i + 0.2) for i, w in enumerate(["mark", "is", "going", "to", "see"] * 20)]
    fig = alignment_figure(torch.zeros(seconds * rate), rate, torch.zeros(seconds * 100 + 1, 8), 0.01, "log-mel bin",
                           torch.zeros(seconds * 25, 3).log_softmax(-1), 0.04, ["<blank>", "|", "a"], words)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    boxes = [t.get_window_extent(renderer) for t in fig.axes[3].texts]  # the words' row, under the posteriors
    assert len(boxes) == len(words)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_an_average_that_stayed_best_through_a_resumed_run_keeps_the_star_though_a_later_average_is_logged(
        tmp_path):
    # a run of 5 epochs averaged into best/, resumed for 2 more epochs (the killed run's epoch 6 trimmed
    # and trained again), whose own average did not beat it: best/ still holds the first average
    def epoch(e, wer):
        return {"epoch": e, "step": 10 * e, "train_loss": 50 / e, "valid_loss": 40 / e, "valid_wer": wer,
                "valid_cer": wer / 2, "lr": 1e-3, "seconds": 1.0}

    lines = [epoch(1, 0.9), epoch(2, 0.6), epoch(3, 0.5), epoch(4, 0.45), epoch(5, 0.44),
             {"averaged": ["epoch-004", "epoch-005"], "valid_loss": 7.0, "valid_wer": 0.40, "valid_cer": 0.2,
              "best": True},
             epoch(6, 0.43), epoch(7, 0.42),
             {"averaged": ["epoch-006", "epoch-007"], "valid_loss": 6.0, "valid_wer": 0.41, "valid_cer": 0.2}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    from asr.plots import _read_log

    records, averages = _read_log(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6, 7]
    fig = training_figure(records, averages=averages)
    assert _wer_legend(fig) == "WER (best 40.0%, the average of 2 epochs)"
    [star] = [line for line in fig.axes[1].get_lines() if line.get_marker() == "*"]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (5, pytest.approx(40.0))  # where it was made
    lines[-2] = epoch(7, 0.39)  # an epoch that beats the average takes best/ from it, as training ranks them
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    records, averages = _read_log(tmp_path)
    assert _wer_legend(training_figure(records, averages=averages)) == "WER (best 39.0%, epoch 7)"
