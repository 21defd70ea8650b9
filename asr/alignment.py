"""Word timestamps and confidence from CTC forced alignment of a chosen transcript.

The decoder picks the words; ``torchaudio.functional.forced_align`` then finds the most likely
frame path that spells exactly them (their tokens, ``|`` between words), so every word gets the
frames its letters were aligned to, whichever decoder chose it.

A CTC model marks each letter with a one-frame spike, often early, so a word's last spike is
not where its sound ends ("elephant" in examples/: spike at 2.48 s, sound to 2.8 s). A word's
end is therefore moved on (``extend_word_ends``) through the frames that still sound, up to the
next word's start, a pause, or ``max_tail`` frames; starts stay at the first spike. "Sound" is
judged against the word's own level and the noise floor of the audio decoded (a cut file's:
each segment's), so cutting a file at other points gives the same times.

Confidence comes from the model's posteriors along that path: a letter's confidence is its mean
posterior over its frames, a word's the lowest of its letters' (one doubtful letter makes a
doubtful word), an utterance's the mean of its words'. Words the LM pushed in against the
acoustics get low confidence. An empty transcript's confidence is the mean blank posterior.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch
from torchaudio.functional import forced_align, merge_tokens

from asr.decoding import Hypothesis
from asr.tokenizers import Tokenizer


@dataclass(frozen=True)
class WordAlignment:
    word: str
    start: int  # first frame
    end: int  # one past the last frame
    confidence: float


def _alignable(targets: list[int], frames: int) -> bool:
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    return len(targets) + repeats <= frames


def _word_starts(tokens: Sequence[int], sep: int) -> list[int]:
    """Where each ``sep``-delimited run of tokens (a word's spelling) starts."""
    return [i for i, t in enumerate(tokens) if t != sep and (i == 0 or tokens[i - 1] == sep)]


def complete_words(hyp: Hypothesis, tokenizer: Tokenizer) -> Hypothesis | None:
    """``hyp`` with its tokens (and frames) cut to the spellings of its text's words, or None
    when they do not spell that many words. A lexicon search's path can go on into a word it never
    completed (flashlight's, with a small beam: "the fox jum"); its text has only the complete
    words, and so must its words' times."""
    words, sep = len(hyp.text.split()), tokenizer.word_sep_id
    starts = _word_starts(hyp.tokens, sep)
    if len(starts) < words:
        return None
    if len(starts) == words:
        return hyp
    end = starts[words] if words else 0
    while end > 0 and hyp.tokens[end - 1] == sep:
        end -= 1
    return replace(hyp, tokens=hyp.tokens[:end], frames=hyp.frames[:end])


def align_words(log_probs: torch.Tensor, hyp: Hypothesis, tokenizer: Tokenizer
                ) -> tuple[list[WordAlignment], float] | None:
    """(T, V) log-probs of one utterance and its hypothesis -> (words, utterance confidence).

    The hypothesis' tokens for its text's words are aligned (``complete_words``: a lexicon word's
    spelling need not be its letters), else the text as the tokenizer spells it. None when
    neither spells the text or fits the frames.
    """
    log_probs = log_probs.detach().float().cpu()
    words = hyp.text.split()
    if not words:
        blank = log_probs[:, tokenizer.blank_id].exp()
        return [], float(blank.mean()) if blank.numel() else 1.0
    complete = complete_words(hyp, tokenizer)
    if complete is not None:
        targets = list(complete.tokens)
    else:
        try:
            targets = tokenizer.encode(" ".join(words))
        except ValueError:  # UnknownCharacterError / UnknownWordError: a word it cannot spell
            return None
    if len(_word_starts(targets, tokenizer.word_sep_id)) != len(words) \
            or not _alignable(targets, log_probs.shape[0]):
        return None
    path, scores = forced_align(log_probs[None], torch.tensor([targets], dtype=torch.int32),
                                blank=tokenizer.blank_id)
    spans = merge_tokens(path[0], scores[0].exp(), blank=tokenizer.blank_id)
    result, letters = [], []
    for span in spans + [None]:
        if span is None or span.token == tokenizer.word_sep_id:
            if letters:
                word = words[len(result)]
                result.append(WordAlignment(word, letters[0].start, letters[-1].end,
                                            min(s.score for s in letters)))
            letters = []
        else:
            letters.append(span)
    confidence = sum(w.confidence for w in result) / len(result)
    return result, confidence


def extend_word_ends(words: list[WordAlignment], energy: Sequence[float], max_tail: int,
                     quiet_db: float, noise_floor: float = 0.0, floor_quiet_db: float = 20.0
                     ) -> list[WordAlignment]:
    """Each word's end moved on through the following frames that still sound (``energy`` per
    frame within ``quiet_db`` of the loudest frame from the word's start to where it may end:
    the word's own level, so a quiet word keeps its tail after a loud one; and, once
    ``floor_quiet_db`` below that level, at or above ``noise_floor``: room noise 25 dB under a
    loud word is no tail of it), stopping at the next word's first frame and after at most
    ``max_tail`` frames. As the segmenter takes a pause, so that cut and whole files agree."""
    out = []
    for i, word in enumerate(words):
        limit = min(words[i + 1].start if i + 1 < len(words) else len(energy), word.end + max_tail, len(energy))
        end = word.end
        if word.start < limit:
            level = max(energy[word.start:limit])
            floor = max(level * 10 ** (-quiet_db / 10), min(noise_floor, level * 10 ** (-floor_quiet_db / 10)))
            while end < limit and energy[end] > 0 and energy[end] >= floor:
                end += 1
        out.append(replace(word, end=end))
    return out
