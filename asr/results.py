"""What transcription returns: a ``Result`` (text, timed ``Segment``s and ``Word``s, confidence,
n-best alternatives), words timed from a hypothesis's emission frames, and the per-segment
results of a long file stitched back onto its clock (``merge_results``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.alignment import complete_words
from asr.decoding import Hypothesis


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float
    confidence: float | None = None  # 0..1, from the model's posteriors (see asr/alignment.py)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Result:
    text: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    confidence: float | None = None  # of the whole transcript, 0..1
    # the next best transcripts when n-best was asked for (beam, nbest > 1); none for a file cut
    # into several segments (a list per segment would not be whole-file transcripts)
    alternatives: list[str] = field(default_factory=list)


def words_from_hypothesis(hyp: Hypothesis, tokenizer, frame_shift: float, frame_centre: float = 0.0) -> list[Word]:
    """The text's words, timed from the frames where each one's first and last tokens were emitted
    (when forced alignment cannot place them); none when the tokens do not spell the text's words.

    Output frame k is centred ``frame_centre + k * frame_shift`` seconds into the audio (the
    model's ``frame_centre``: 0 for conv subsampling, (factor - 1) / 2 feature frames for frame
    stacking). A word starts at its first frame's centre and ends at the centre of the frame
    after its last, as forced-aligned words do."""
    hyp = complete_words(hyp, tokenizer)
    if hyp is None or len(hyp.frames) != len(hyp.tokens):
        return []
    names, words, first, last = iter(hyp.text.split()), [], None, None
    for token, frame in zip(list(hyp.tokens) + [tokenizer.word_sep_id], list(hyp.frames) + [None]):
        if token == tokenizer.word_sep_id:
            if first is not None:
                start, end = frame_centre + first * frame_shift, frame_centre + (last + 1) * frame_shift
                words.append(Word(next(names), round(start, 3), round(end, 3)))
            first = None
            continue
        first = frame if first is None else first
        last = frame
    return words


def split_at_pauses(words: list[Word], text: str, pause: float) -> list[Segment]:
    """Phrases: a new segment wherever the words pause for more than ``pause`` seconds. Each
    segment spans its first to last word, so subtitles do not show text over silence."""
    tokens = text.split()
    if not words or len(tokens) != len(words):  # no usable word times: one segment
        return [Segment(words[0].start, words[-1].end, text)] if words else []
    segments, first = [], 0
    for i in range(1, len(words) + 1):
        if i == len(words) or words[i].start - words[i - 1].end > pause:
            segments.append(Segment(words[first].start, words[i - 1].end, " ".join(tokens[first:i])))
            first = i
    return segments


def merge_results(pieces: list[tuple[float, Result]], duration: float, pause: float = 0.6) -> Result:
    """Per-segment Results (each timed from its own start) -> one Result on the file's clock,
    with segments re-cut at the pauses between words (see ``split_at_pauses``). A single piece
    keeps its n-best alternatives; a file of several pieces gets none. The confidence is the
    pieces' (weighted by their words); a transcript of nothing has its pieces' (the blank's
    posterior, asr.alignment), and None only where no piece was run (silence)."""
    segments, words, texts, weighted, count = [], [], [], 0.0, 0
    heard_nothing = []  # the confidences of pieces that were run and decoded to no words
    pieces = sorted(pieces, key=lambda p: p[0])
    # A piece's times are rounded to the ms on its own clock, so its last word can end up to 0.5 ms
    # past its audio, and rounded again on the file's clock, past the next piece's first word (time
    # going back). Held to where the next piece starts (or the file ends), they stay in order.
    starts = [offset for offset, _ in pieces[1:]] + [duration]
    for (offset, r), later in zip(pieces, starts):
        if not r.text:
            if r.confidence is not None:
                heard_nothing.append(r.confidence)
            continue
        texts.append(r.text)
        end = min(offset + r.duration, later)
        moved = [Word(w.word, round(min(w.start + offset, end), 3), round(min(w.end + offset, end), 3),
                      w.confidence) for w in r.words]
        words += moved
        if moved:
            segments += split_at_pauses(moved, r.text, pause)
        else:
            segments.append(Segment(round(offset, 3), round(end, 3), r.text))
        if r.confidence is not None:  # a mean over its words: weighted by its text's words, timed or not
            n = len(r.text.split())
            weighted, count = weighted + r.confidence * n, count + n
    alternatives = pieces[0][1].alternatives if len(pieces) == 1 else []
    confidence = round(weighted / count, 4) if count else None
    if not texts and heard_nothing:
        confidence = round(sum(heard_nothing) / len(heard_nothing), 4)
    return Result(" ".join(texts), duration, segments, words, confidence, alternatives)
