"""Word timestamps and confidence from forced alignment; the transcriber and writers carry them."""

import io
import json

import pytest
import torch

from asr.alignment import align_words
from asr.config_files import config_from_dict
from asr.decoding import GreedyDecoder, Hypothesis
from asr.model import AcousticModel
from asr.model_dir import LoadedModel
from asr.results import Result, Word
from asr.text import CharTokenizer
from asr.transcribe import Transcriber
from asr.writers import get_writer
from conftest import ctc_log_probs

TOKENIZER = CharTokenizer.build(["hello world go"])


def hyp(text):
    return Hypothesis(text, tuple(TOKENIZER.encode(text)), (), 0.0)


def test_words_start_and_end_at_the_frames_of_their_letters():
    frames = ["<blank>"] * 3 + ["g", "g", "o"] + ["<blank>"] * 2 + ["|"] + ["h", "e", "l", "<blank>", "l", "o"] + ["<blank>"]
    words, confidence = align_words(ctc_log_probs(TOKENIZER, frames)[0][0], hyp("go hello"), TOKENIZER)
    assert [(w.word, w.start, w.end) for w in words] == [("go", 3, 6), ("hello", 9, 15)]
    assert all(0.99 < w.confidence <= 1.0 for w in words) and confidence == pytest.approx(1.0, abs=0.01)


def test_a_word_the_model_doubts_gets_a_lower_confidence():
    frames = ["g", "o", "|", "h", "e", {"l": 0.3, "<blank>": 0.7}, "<blank>", "l", "o", "<blank>"]
    words, confidence = align_words(ctc_log_probs(TOKENIZER, frames)[0][0], hyp("go hello"), TOKENIZER)
    go, hello = words
    assert hello.confidence == pytest.approx(0.3, abs=0.01) and go.confidence > 0.99
    assert confidence == pytest.approx((go.confidence + hello.confidence) / 2)


def test_a_transcript_that_cannot_fit_the_frames_is_not_aligned():
    lp = ctc_log_probs(TOKENIZER, ["h", "e", "l"])[0][0]
    assert align_words(lp, hyp("hello"), TOKENIZER) is None


def test_an_empty_transcript_has_no_words_and_the_blank_posterior_as_confidence():
    lp = ctc_log_probs(TOKENIZER, [{"<blank>": 0.8, "h": 0.2}] * 4)[0][0]
    words, confidence = align_words(lp, hyp(""), TOKENIZER)
    assert words == [] and confidence == pytest.approx(0.8, abs=0.01)


def test_a_beam_path_s_unfinished_last_word_is_left_out_of_the_alignment():
    # flashlight's lexicon search with a small beam: text "go", a path that went on into "hel"
    frames = ["g", "o", "|", "h", "e", "l", "<blank>"]
    lp = ctc_log_probs(TOKENIZER, frames)[0][0]
    unfinished = Hypothesis("go", tuple(TOKENIZER.encode("go hel")), (0, 1, 2, 3, 4, 5), 0.0)
    words, confidence = align_words(lp, unfinished, TOKENIZER)
    assert [(w.word, w.start) for w in words] == [("go", 0)] and confidence is not None


def test_tokens_that_do_not_spell_the_text_s_words_are_replaced_by_the_text_s_spelling():
    lp = ctc_log_probs(TOKENIZER, ["g", "o", "|", "h", "e", "l", "<blank>", "l", "o"])[0][0]
    words, _ = align_words(lp, Hypothesis("go hello", tuple(TOKENIZER.encode("go")), (), 0.0), TOKENIZER)
    assert [w.word for w in words] == ["go", "hello"]


class _FixedOutputs(torch.nn.Module):
    """Stands in for an acoustic model: the same log-probs for every input."""

    frame_shift = 0.04
    frame_centre = 0.0  # a conv model's: frame k centred k * frame_shift into the audio

    def __init__(self, log_probs, frame_centre=0.0):
        super().__init__()
        self.log_probs, self.frame_centre = log_probs, frame_centre

    def forward(self, waves, lengths):
        return self.log_probs.expand(len(waves), -1, -1), torch.full((len(waves),), self.log_probs.shape[1])


GO_HELLO = ["<blank>"] * 5 + ["g", "o", "<blank>", "|", "h", "e", "l", "<blank>", "l", "o"] + ["<blank>"] * 5


def fixed_transcriber(frames, subsampling="conv", decoder=None) -> Transcriber:
    """A transcriber whose model (a tiny one of this ``subsampling``, x4) always puts out ``frames``."""
    cfg = config_from_dict({"model": {"num_layers": 1, "hidden_size": 8, "conv_channels": 2,
                                      "subsampling": subsampling}})
    model = AcousticModel(cfg.features, cfg.model, len(TOKENIZER))
    transcriber = Transcriber(LoadedModel(cfg, model, TOKENIZER, None), decoder or GreedyDecoder(TOKENIZER),
                              device="cpu")
    transcriber.model = _FixedOutputs(ctc_log_probs(TOKENIZER, frames)[0], model.frame_centre)
    return transcriber


def test_transcriber_results_carry_word_times_in_seconds_and_confidence():
    transcriber = fixed_transcriber(GO_HELLO)
    result = transcriber.transcribe_waveforms([torch.zeros(16000)])[0]
    assert result.text == "go hello"
    assert [(w.word, w.start, w.end) for w in result.words] == [("go", 0.2, 0.28), ("hello", 0.36, 0.6)]
    assert all(w.confidence > 0.9 for w in result.words) and result.confidence > 0.9


def test_transcriber_word_times_of_a_frame_stacking_model_are_moved_to_its_frames_centres():
    transcriber = fixed_transcriber(GO_HELLO, "stack")  # frame centres 15 ms later, at x4
    result = transcriber.transcribe_waveforms([torch.zeros(16000)])[0]
    assert [(w.word, w.start, w.end) for w in result.words] == [("go", 0.215, 0.295), ("hello", 0.375, 0.615)]


def test_word_times_from_the_decoder_s_frames_when_alignment_fails_end_within_the_audio(monkeypatch):
    # The last output frame can reach past the audio's end (frames are rounded up), and a frame
    # stacking model's centre moves it further: the aligned words were clamped, these were not.
    import asr.transcribe

    transcriber = fixed_transcriber(["<blank>"] * 20 + ["g", "o"], "stack")  # 22 frames of 40 ms: 0.88 s, on 0.85 s
    monkeypatch.setattr(asr.transcribe, "align_words", lambda *args: None)  # a spelling the frames cannot fit
    result = transcriber.transcribe_waveforms([torch.zeros(int(0.85 * 16000))])[0]
    assert [(w.word, w.start, w.end) for w in result.words] == [("go", 0.815, 0.85)]


class _UnfinishedLastWord(GreedyDecoder):
    """A lexicon search that stopped inside its last word: the path spells one word more than the text."""

    def decode(self, log_probs, lengths):
        return [Hypothesis(" ".join(h.text.split()[:-1]), h.tokens, h.frames, h.score)
                for h in super().decode(log_probs, lengths)]


def test_a_transcript_s_words_are_its_text_s_even_when_the_search_ended_inside_a_word():
    transcriber = fixed_transcriber(GO_HELLO, decoder=_UnfinishedLastWord(TOKENIZER))
    result = transcriber.transcribe_waveforms([torch.zeros(16000)])[0]
    assert result.text == "go" and [w.word for w in result.words] == ["go"]
    assert result.words[0].confidence is not None and result.confidence is not None


def _tone(seconds: float, *spans: tuple[float, float], rate: int = 16000) -> torch.Tensor:
    """``seconds`` of silence with a 200 Hz tone over each (start, end) span."""
    wave = torch.zeros(int(seconds * rate))
    for start, end in spans:
        t = torch.arange(int(start * rate), int(end * rate))
        wave[t] = 0.5 * torch.sin(2 * torch.pi * 200 * t / rate)
    return wave


@pytest.mark.parametrize("spans, ends", [
    # go's sound stops before hello's starts; hello's stops at 0.72 s
    ([(0.2, 0.32), (0.36, 0.72)], [0.32, 0.72]),
    # sound throughout: go ends where hello starts, hello at most 0.5 s after its last spike
    # (12 frames of 40 ms)
    ([(0.2, 1.3)], [0.36, 1.08]),
])
def test_a_word_ends_where_its_sound_ends_not_at_its_last_spike(spans, ends):
    transcriber = fixed_transcriber(GO_HELLO + ["<blank>"] * 15)
    result = transcriber.transcribe_waveforms([_tone(1.4, *spans)])[0]
    assert [(w.word, w.start) for w in result.words] == [("go", 0.2), ("hello", 0.36)]  # starts: the spikes
    assert [w.end for w in result.words] == pytest.approx(ends)


@pytest.mark.parametrize("noise_dbfs", [-60.0, -35.0])  # room noise 50 and 25 dB under the word
def test_a_word_s_tail_stops_at_the_recording_s_noise_floor_not_30_db_under_the_word(noise_dbfs):
    # Within 30 dB of a loud word, room noise would pass for its tail: flite sentences under white
    # noise at -40 dBFS ended their last word 0.29 s late on average, 0.02 s early with the floor.
    noise = torch.randn(int(1.4 * 16000), generator=torch.Generator().manual_seed(0)) * 10 ** (noise_dbfs / 20)
    result = fixed_transcriber(GO_HELLO + ["<blank>"] * 15).transcribe_waveforms([_tone(1.4, (0.36, 0.72)) + noise])[0]
    assert result.words[-1].word == "hello" and result.words[-1].end == pytest.approx(0.72)


def test_json_writer_carries_words_times_and_confidence_and_txt_stays_one_line():
    result = Result("go hello", 1.5, [], [Word("go", 0.2, 0.28, 0.95), Word("hello", 0.36, 0.6, 0.5)], 0.725)
    out = io.StringIO()
    get_writer("json", out).write("a.wav", result)
    data = json.loads(out.getvalue())
    assert data["path"] == "a.wav" and data["text"] == "go hello" and data["confidence"] == 0.725
    assert data["words"][1] == {"word": "hello", "start": 0.36, "end": 0.6, "confidence": 0.5}
    out = io.StringIO()
    get_writer("txt", out).write("a.wav", result)
    assert out.getvalue() == "a.wav\tgo hello\n"
    with pytest.raises(ValueError, match="unknown output format"):
        get_writer("docx", out)
