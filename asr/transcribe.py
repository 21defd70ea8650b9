"""Transcription: a loaded model plus a decoder, for files, arrays and batches of them.

    >>> import asr
    >>> model = asr.load_model()            # the packaged default model
    >>> result = model.transcribe("speech.wav")
    >>> result.text, result.words[0].start
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from asr.alignment import align_words
from asr.audio import load_audio, prepare_array
from asr.decoding import Decoder, Hypothesis, make_decoder
from asr.model_dir import LoadedModel, load_model_dir


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
    alternatives: list[str] = field(default_factory=list)  # the next best transcripts (beam, nbest > 1)


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(device)


def words_from_hypothesis(hyp: Hypothesis, tokenizer, frame_shift: float) -> list[Word]:
    """Word times from the frames where the word's first and last characters were emitted."""
    words, chars, first, last = [], [], None, None
    for token, frame in zip(list(hyp.tokens) + [tokenizer.word_sep_id], list(hyp.frames) + [None]):
        if token == tokenizer.word_sep_id:
            if chars:
                words.append(Word("".join(chars), round(first * frame_shift, 3),
                                  round((last + 1) * frame_shift, 3)))
            chars, first = [], None
            continue
        chars.append(tokenizer.tokens[token])
        first = frame if first is None else first
        last = frame
    return words


class Transcriber:
    """A model ready to transcribe: weights, tokenizer, decoder and device together."""

    def __init__(self, loaded: LoadedModel, decoder: str | Decoder = "greedy",
                 device: str | None = "auto", **decoder_options):
        self.loaded = loaded
        self.device = resolve_device(device)
        self.model = loaded.model.to(self.device).eval()
        self.tokenizer = loaded.tokenizer
        self.sample_rate = loaded.config.features.sample_rate
        self.decoder = (decoder if isinstance(decoder, Decoder)
                        else make_decoder(decoder, self.tokenizer, **decoder_options))

    @torch.inference_mode()
    def transcribe_waveforms(self, waves: Sequence[torch.Tensor]) -> list[Result]:
        """Mono waveforms at the model's rate -> one Result each, run as one batch."""
        lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
        batch = torch.zeros(len(waves), int(lengths.max()))
        for i, w in enumerate(waves):
            batch[i, : w.numel()] = w
        log_probs, out_lengths = self.model(batch.to(self.device), lengths.to(self.device))
        log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
        nbests = self.decoder.decode_nbest(log_probs, out_lengths)  # all utterances at once
        shift = self.model.frame_shift
        results = []
        for b, (nbest, n) in enumerate(zip(nbests, lengths.tolist())):
            hyp = nbest[0]
            duration = n / self.sample_rate
            aligned = align_words(log_probs[b, : int(out_lengths[b])], hyp, self.tokenizer)
            if aligned is None:  # not expected for a CTC path; keep the decoder's frames then
                words, confidence = words_from_hypothesis(hyp, self.tokenizer, shift), None
            else:
                words = [Word(w.word, round(w.start * shift, 3), round(w.end * shift, 3), round(w.confidence, 4))
                         for w in aligned[0]]
                confidence = round(aligned[1], 4)
            segments = [Segment(0.0, round(duration, 3), hyp.text)] if hyp.text else []
            results.append(Result(hyp.text, duration, segments, words, confidence, [h.text for h in nbest[1:]]))
        return results

    def load(self, audio, sample_rate: int | None = None) -> torch.Tensor:
        if isinstance(audio, (str, Path)):
            return load_audio(audio, self.sample_rate)
        return prepare_array(audio, sample_rate, self.sample_rate)

    def transcribe(self, audio, sample_rate: int | None = None) -> Result:
        """``audio``: a file path, or an array/tensor with its ``sample_rate``."""
        return self.transcribe_waveforms([self.load(audio, sample_rate)])[0]


def load_model(path: str | Path | None = None, decoder: str | Decoder = "greedy",
               device: str | None = "auto", **decoder_options) -> Transcriber:
    """Load a model directory (the packaged default when ``path`` is None).

    ``decoder="beam"`` takes ``lm=``, ``lexicon=``, ``hotwords=``, ``options=BeamSearchOptions(...)``
    and ``workers=`` (see ``asr/beam_search.py``).
    """
    return Transcriber(load_model_dir(path), decoder=decoder, device=device, **decoder_options)
