"""Every command that scores a manifest runs a long utterance as ``asr evaluate`` and
``asr transcribe`` do: cut at pauses into segments of at most ``max_seconds`` (20 s), each
decoded on its own and the texts joined. So LM weights, rescoring weights, token priors and the
checkpoint training keeps are all chosen on what evaluate then scores."""

import itertools
import json
import math

import numpy as np
import pytest
import soundfile as sf

from asr.beam_search import BeamSearchDecoder
from asr.config import Config
from asr.data import SpeechDataset, Utterance
from asr.evaluate import evaluate, readable_batches
from asr.metrics import word_errors
from asr.priors import estimate_priors
from asr.rescoring import Candidates, PieceTable, RescoringOptions, RescoringTranscriber, joined_oracle_errors, tune
from asr.segmenter import Segmenter
from asr.selection import validate
from asr.transcribe import load_model
from asr.tuning import tune as tune_lm
from tests.test_rescoring import packages  # noqa: F401 (a fixture)
from tests.test_transcribe import HOP, RATE, long_file, speller  # noqa: F401 (a fixture)

MAX_SAMPLES = 20 * RATE  # the segmenter's max_seconds


def watch_model_runs(transcriber) -> list[int]:
    """From now on, the length of every wave ``transcriber`` runs through its model."""
    seen = []
    run = transcriber.log_probs
    transcriber.log_probs = lambda waves: seen.extend(w.numel() for w in waves) or run(waves)
    return seen


def pieces_transcribe_runs(transcriber, path) -> list[int]:
    """The lengths of the waves ``transcribe`` runs through the model for the file ``path``."""
    run = transcriber.log_probs
    seen = watch_model_runs(transcriber)
    transcriber.transcribe(str(path))
    transcriber.log_probs = run
    return seen


@pytest.fixture
def t(tiny_model_dir):
    transcriber = speller(tiny_model_dir)  # spells "hoho" over loud frames: its text shows where it was cut
    transcriber.segmenter = Segmenter.on_frames(RATE, transcriber.model.frame_shift)  # cuts on the speller's frames
    return transcriber


@pytest.fixture
def long_utterance(t, long_file):
    """~55 s of real speech, its reference what transcribe makes of it: evaluate scores it WER 0."""
    return Utterance(str(long_file), sf.info(str(long_file)).duration, t.transcribe(str(long_file)).text)


def test_the_long_test_utterance_is_cut_by_evaluate_into_pieces_that_are_scored_whole(t, long_utterance):
    assert long_utterance.duration > 2 * 20 and len(long_utterance.text.split()) > 10
    assert max(pieces_transcribe_runs(t, long_utterance.audio_filepath)) <= MAX_SAMPLES
    assert evaluate(t, [long_utterance]).wer == 0.0


def test_tuning_and_priors_read_a_long_utterance_in_the_pieces_transcribe_runs(t, long_utterance):
    batches = list(readable_batches(t, [long_utterance], 300.0, []))
    waves = [w for b, _ in batches for w in b]
    assert [w.numel() for w in waves] == pieces_transcribe_runs(t, long_utterance.audio_filepath)
    assert [r for _, refs in batches for r in refs] == [long_utterance.text] + [None] * (len(waves) - 1)


def test_a_long_utterance_s_pieces_never_fill_a_batch_past_its_seconds(t, long_utterance):
    pieces = pieces_transcribe_runs(t, long_utterance.audio_filepath)
    together = 2 * len(pieces) * max(pieces) / RATE  # two utterances' pieces padded in one batch
    seconds = (2 * long_utterance.duration + together) / 2  # room for the two whole, not for all their pieces
    batches = list(readable_batches(t, [long_utterance, long_utterance], seconds, []))
    assert len(batches) == 2 and all(len(waves) * max(w.numel() for w in waves) <= seconds * RATE
                                     for waves, _ in batches)
    assert all(refs == [long_utterance.text] + [None] * (len(pieces) - 1) for _, refs in batches)  # never split


def test_pieces_are_packed_in_order_up_to_the_padded_budget_and_a_group_is_never_split():
    # one packing for validation's pieces (asr.selection) and tuning's and priors' (readable_batches)
    from asr.batching import padded_batches

    groups = [[2], [2, 2], [3], [1], [9], [1, 1]]
    batches = list(padded_batches(groups, lambda sizes: sizes, budget=9))
    assert batches == [[[2], [2, 2]], [[3], [1]], [[9]], [[1, 1]]]  # [3] would pad 4 waves to 12 > 9
    assert list(padded_batches([[2], [2, 2]], lambda sizes: sizes, budget=5)) == [[[2]], [[2, 2]]]  # whole, later


def test_lm_tuning_scores_a_long_utterance_as_evaluate_does(t, long_utterance):
    seen = watch_model_runs(t)
    result = tune_lm(t, BeamSearchDecoder(t.tokenizer), [long_utterance], lm_weights=(0.0,), word_scores=(0.0,))
    assert seen and max(seen) <= MAX_SAMPLES  # never run whole
    assert result.greedy_wer == 0.0 and result.utterances == 1  # the pieces' texts joined, as evaluate joins them


def test_token_priors_are_averaged_over_the_frames_of_a_long_utterance_s_pieces(t, long_utterance):
    pieces = pieces_transcribe_runs(t, long_utterance.audio_filepath)
    seen = watch_model_runs(t)
    estimate = estimate_priors(t, [long_utterance])
    assert seen == pieces and estimate.skipped == [] and estimate.used == 1
    assert estimate.frames == sum(n // HOP for n in pieces)  # the speller's frames


def test_validation_decodes_a_long_utterance_in_pieces_never_runs_it_whole_and_leaves_it_out_of_the_loss(
        t, long_utterance, tmp_path):
    wave, _ = sf.read(long_utterance.audio_filepath, dtype="float32")
    sf.write(str(tmp_path / "short.wav"), wave[: 5 * RATE], RATE)
    short = Utterance(str(tmp_path / "short.wav"), 5.0, t.transcribe(str(tmp_path / "short.wav")).text)
    model_runs = []

    class Watched(type(t.model)):
        def forward(self, waves, lengths):
            model_runs.append(lengths.tolist())
            return super().forward(waves, lengths)

    model = Watched(t.tokenizer)
    both = SpeechDataset([long_utterance, short], t.tokenizer, RATE)  # the long one kept whole, as asr.train keeps it
    scores = validate(model, both, Config(), "cpu", t.tokenizer)
    assert both.waveform(0).numel() > MAX_SAMPLES
    assert all(n <= MAX_SAMPLES for run in model_runs for n in run)  # its CTC table would grow with its length
    assert scores["valid_wer"] == 0.0 and scores["valid_cer"] == 0.0  # scored on its pieces' joined text
    alone = validate(model, SpeechDataset([short], t.tokenizer, RATE), Config(), "cpu", t.tokenizer)
    assert math.isfinite(alone["valid_loss"]) and scores["valid_loss"] == alone["valid_loss"]


def test_training_keeps_a_long_valid_utterance_whole_for_validation_to_cut(tiny_corpus, long_file, tmp_path,
                                                                            monkeypatch):
    import asr.train as train_module
    from tests.test_train import tiny_config

    wave, _ = sf.read(str(long_file), dtype="float32")
    padded = np.concatenate([np.zeros(3 * RATE, np.float32), wave])  # a quiet edge a short clip would lose
    sf.write(str(tmp_path / "long.wav"), padded, RATE)
    texts = [json.loads(line)["text"] for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    (tmp_path / "train.jsonl").write_text((tiny_corpus / "train.jsonl").read_text())
    (tmp_path / "valid.jsonl").write_text(json.dumps({"audio_filepath": str(tmp_path / "long.wav"),
                                                      "duration": len(padded) / RATE, "text": " ".join(texts)}) + "\n")
    made, load_split = [], train_module.load_split

    class Loaded(Exception):
        pass

    def load_then_stop(*args, **kwargs):
        made.append(load_split(*args, **kwargs))
        if args[3] == "valid":
            raise Loaded  # the valid set is all this test needs of a run
        return made[-1]

    monkeypatch.setattr(train_module, "load_split", load_then_stop)
    with pytest.raises(Loaded):
        train_module.train(tiny_config(tmp_path, tmp_path / "run", "train.max_duration=90"))
    assert made[-1].waveform(0).numel() == len(padded)


def test_rescoring_tuning_scores_a_long_utterance_as_evaluate_does(packages, long_file, monkeypatch):  # noqa: F811
    first, second = packages
    options = RescoringOptions(weights=(1.0, 1.0), lm_weight=0.5, word_score=0.0, nbest=4)
    combined = RescoringTranscriber([load_model(first), load_model(second)], options)
    utterance = Utterance(str(long_file), sf.info(str(long_file)).duration, "hello world " * 20)
    evaluated = evaluate(combined, [utterance])
    seen = []
    original = combined.candidates_at
    monkeypatch.setattr(combined, "candidates_at", lambda waves, scales: seen.extend(waves) or original(waves, scales))
    result = tune(combined, [utterance], weights=(1.0,), lm_weights=(0.5,), word_scores=(0.0,))
    assert len(seen) > 1 and max(w.numel() for w in seen) <= MAX_SAMPLES
    assert result.utterances == 1 and result.wer == pytest.approx(evaluated.wer)
    assert result.oracle_wer <= min(result.wer, result.first_wer)


def cut(pieces_candidates, texts_ctc):
    """One system's candidates per piece, scored ``texts_ctc``, with an indifferent LM."""
    return [Candidates(texts, [ctc], [0.0] * len(texts)) for texts, ctc in zip(pieces_candidates, texts_ctc)]


def test_a_cut_utterance_is_scored_on_its_pieces_best_candidates_joined():
    candidates = cut([["a b", "a"], ["c", "x y"], ["d"]], [[-1.0, -2.0], [-3.0, -1.0], [-1.0]])
    table = PieceTable(candidates, ["a b c d", None, "d"])  # a cut utterance of two pieces, then a whole one
    assert table.word_error_rate((1.0,), 0.0, 0.0) == pytest.approx(
        word_errors(["a b c d", "d"], ["a b x y", "d"]).rate)  # "x y" wins its piece on the acoustic score
    assert table.word_error_rate((1.0,), 0.0, -5.0) == pytest.approx(
        word_errors(["a b c d", "d"], ["a c", "d"]).rate)  # a word penalty: the shorter candidate of each piece


def test_the_oracle_of_a_cut_utterance_is_the_best_join_of_its_pieces_candidates():
    pieces = [["the cat", "a cat sat", ""], ["sat on", "on the"], ["mat", "the mat", "hat"]]
    for reference in ("the cat sat on the mat", "a cat on mat", "", "hat hat hat hat hat hat hat"):
        every_join = [" ".join(t for t in join if t) for join in itertools.product(*pieces)]
        assert joined_oracle_errors(reference, pieces) == min(word_errors([reference], [h]).errors for h in every_join)
    assert joined_oracle_errors("the cat sat on the mat", pieces) == 0
