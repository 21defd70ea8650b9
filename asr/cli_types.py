"""argparse types the ``asr`` parsers share: checked before any work starts."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


def floats(text: str) -> list[float]:
    """argparse type for comma-separated finite numbers ("0,0.5,1"); empty items are skipped, but
    not all of them (an empty grid would tune nothing)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def votes(text: str) -> list[float]:
    """argparse type for ROVER's votes per system: numbers of at least 0, not all 0."""
    values = floats(text)
    if min(values) < 0 or not any(values):
        raise argparse.ArgumentTypeError(f"expected votes of at least 0, not all 0, got {text!r}")
    return values


def scales(why: str):
    """argparse type for a grid of scales (comma-separated, as ``floats``), each at least 0; ``why``
    says what one below 0 would do. (Word scores and blank penalties are offsets, which may go
    either way: plain ``floats``.)"""
    def parse(text: str) -> list[float]:
        values = floats(text)
        if min(values) < 0:
            raise argparse.ArgumentTypeError(f"must each be at least 0 (below, {why}), got {min(values):g}")
        return values
    return parse


# --lm-weights and --prior-scales of `asr lm tune` and `asr tune-rescoring`
lm_weights = scales("the LM would favour unlikely words")
prior_scales = scales("the posteriors would be multiplied by the priors, not divided")


def user_path(text: str) -> str:
    """argparse type for a file or directory: ``~`` expanded, as the shell does not in ``--lm=~/x.arpa``."""
    return os.path.expanduser(text)


def positive(kind, zero: bool = False):
    """argparse type: a count, size or duration, which must be above 0 (``kind``: int or float);
    with ``zero``, 0 too (where it means "the default", as for --threads)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number, got {text!r}") \
                from None
        if not (value > 0 or zero and value == 0):  # (NaN too)
            raise argparse.ArgumentTypeError(f"must be {'at least' if zero else 'above'} 0, got {text}")
        return value
    return parse


def at_least(minimum: int, why: str):
    """argparse type: a whole number of at least ``minimum``; ``why`` says what fewer would lack."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} ({why}), got {text}")
        return value
    return parse


def threads_arg(parser) -> None:
    """--threads, applied by asr.cli.main before the command runs."""
    parser.add_argument("--threads", type=positive(int, zero=True), help="CPU threads for the models "
                        "(torch.set_num_threads; 0 or none: torch's default)")


def check_output(output: str, inputs=(), directory: bool = False):
    """``asr.atomic.check_writable(output, directory)``, and refuse (a RuntimeError: one line, exit 2) an
    ``output`` that is one of ``inputs``, by path or through a link: commands read their inputs,
    then replace the output whole, so that input would be lost to a file of another kind (a
    manifest to hypotheses, a text to an LM)."""
    from asr.atomic import check_writable

    for given in inputs if os.path.exists(output) else ():
        try:
            same = os.path.samefile(output, given)
        except OSError:  # an input not there: its reader names it
            continue
        # a folder replaced whole takes what is in it along
        inside = directory and Path(os.path.realpath(given)).is_relative_to(os.path.realpath(output))
        if same or inside:
            raise RuntimeError(f"{output}: it is also the input {given}: writing it would destroy it; "
                               "give another output")
    return check_writable(output, directory)
