"""A decoder by name (``asr.DECODERS``: the CLI's --decoder, ``load_model``'s ``decoder=``): greedy,
beam search, or ``auto``, beam search only when search options are given. Beam search, and so
flashlight, is imported only when asked for."""

from __future__ import annotations

from asr import DECODERS
from asr.decoding import Decoder, GreedyDecoder


def check_decoder_name(name) -> str:
    """``name`` when it is one of ``DECODERS``; any other is refused, naming them all."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; available: {', '.join(DECODERS)}")
    return name


def make_decoder(name: str, tokenizer, **options) -> Decoder:
    """``greedy`` or ``beam`` (options: see ``BeamSearchDecoder``); ``auto`` is beam search when
    options are given, else greedy (a model's packaged LM: ``Transcriber``)."""
    if check_decoder_name(name) == "auto":
        from asr.decoding_config import choose_decoder

        name = choose_decoder(name, None, bool(options))
    if name == "greedy":
        return GreedyDecoder(tokenizer, **options)
    from asr.beam_search import BeamSearchDecoder  # flashlight loads only when asked for

    return BeamSearchDecoder(tokenizer, **options)
