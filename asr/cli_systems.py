"""Which transcribers the command-line options describe: a model directory with its own beam
settings or the ones given, the models it is combined with, or a rescoring file's systems.

Shared by evaluate, transcribe, tune-rescoring and plot (asr/commands.py), with the one way
the CLI prints a message to stderr.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys


def print_error(message: str) -> None:
    print(f"asr: {message}", file=sys.stderr, flush=True)


def warn_if_trained_on(models, manifest) -> None:
    """Tuning on a manifest a model trained on favours what it learned: said, naming the model
    (by its provenance.json; a model without one is not known to have)."""
    from asr.provenance import trained_on

    for model in trained_on(manifest, models):  # the manifest read and hashed once
        print_error(f"warning: {model} was trained on {manifest}: weights tuned on it favour what the model "
                    "learned and will not hold on new speech; tune on a dev split")


# The beam search options of transcribe/evaluate/plot (asr/cli.py's beam_args), by their
# BeamSearchOptions names; unset ones come from MODEL/decoding.yaml or the defaults.
SEARCH_OPTIONS = ("beam_size", "beam_size_token", "beam_threshold", "lm_weight", "word_score", "blank_penalty",
                  "prior_scale", "nbest", "hotword_weight")
BEAM_OPTIONS = ("lm", "lexicon", "hotwords", *SEARCH_OPTIONS)  # each means beam search


def flags_given(args, names) -> list[str]:
    """The command-line flags among ``names`` that were given (``lm_weight`` -> ``--lm-weight``)."""
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) is not None]


def cyclic_gc_paused(load):
    """Run ``load`` with Python's cyclic garbage collector off (reference counting frees as usual).
    A package's lexicons, tries and pronunciations are a few hundred thousand small objects that
    all live on; the collector would walk them again and again as they are built (0.5 s of the
    built-in package's 2.7 s load, BENCHMARKS.md)."""
    @functools.wraps(load)
    def paused(*args, **kwargs):
        if not gc.isenabled():  # an outer load paused it, or the caller did: theirs to restore
            return load(*args, **kwargs)
        gc.disable()
        try:
            return load(*args, **kwargs)
        finally:
            gc.enable()
    return paused


@cyclic_gc_paused
def load_transcriber(args, rescore: bool = True):
    """Model + decoder from the shared options; beam settings from MODEL/decoding.yaml unless given.
    A package that rescores (MODEL/rescoring.yaml) does so with ``--decoder auto`` and no search options."""
    from asr.decoding_config import choose_decoder, model_decoder
    from asr.model_dir import load_model_dir
    from asr.rescoring_files import packaged_rescoring
    from asr.transcribe import Transcriber

    # Alone, it would switch to beam search and boost nothing: surely a forgotten --hotwords.
    if getattr(args, "hotword_weight", None) is not None and getattr(args, "hotwords", None) is None:
        raise RuntimeError("--hotword-weight needs --hotwords")
    beam_given = flags_given(args, BEAM_OPTIONS)
    settings = packaged_rescoring(args.model, args.decoder, bool(beam_given)) if rescore else None
    if settings:
        return rescoring_from(args, settings)
    if rescore and beam_given and packaged_rescoring(args.model, args.decoder):  # as the README says, but said
        print_error(f"note: with {', '.join(beam_given)}, the package's first system searches alone, without "
                    "its n-best rescoring")
    loaded = load_model_dir(args.model)
    if choose_decoder(args.decoder, loaded.path, bool(beam_given)) == "greedy":
        if beam_given:
            raise RuntimeError(f"{', '.join(beam_given)} need{'s' if len(beam_given) == 1 else ''} beam search "
                               "(--decoder beam or auto)")
        return Transcriber(loaded, "greedy", device=args.device)
    decoder, notes = model_decoder(
        loaded.path, loaded.tokenizer, lm=args.lm, lexicon=args.lexicon, hotwords=args.hotwords,
        workers=args.decode_workers, **{n: getattr(args, n, None) for n in SEARCH_OPTIONS})
    for note in notes:
        print_error(note)
    return Transcriber(loaded, decoder, device=args.device)


@cyclic_gc_paused
def systems_from(args) -> list:
    """--model's transcriber, then one per --combine model directory: each of those searches as
    its own package says (its LM and decoding.yaml), with --decoder, --device and --decode-workers."""
    if getattr(args, "rescoring", None):
        return [rescoring_transcriber(args)]
    systems = [load_transcriber(args)]
    systems += [load_transcriber(as_packaged(args, directory), rescore=False) for directory in args.combine or []]
    return systems


def as_packaged(args, directory: str) -> argparse.Namespace:
    """``args`` for another model directory that searches as its package says."""
    return argparse.Namespace(**{**vars(args), "model": directory, **{n: None for n in BEAM_OPTIONS}})


@cyclic_gc_paused
def rescoring_transcriber(args):
    """One transcriber that rescores the pooled n-best of the models a --rescoring file names."""
    given = flags_given(args, ("model", "combine", *BEAM_OPTIONS))
    if given or args.decoder != "auto":
        raise RuntimeError(f"--rescoring names the models and their settings: not with "
                           f"{', '.join(given or ['--decoder'])}")
    return rescoring_from(args, args.rescoring)


def rescoring_from(args, settings):
    from asr.rescoring_files import load_rescoring

    return load_rescoring(settings, lambda model: load_transcriber(as_packaged(args, model), rescore=False))


def combined_outcomes(systems, paths, progress, note):
    """(path, ROVER of every system's Result, or the first system's AudioError) per path."""
    from asr.rover import combine_results

    # the notes are of the files, so the first system's are enough
    runs = [list(t.transcribe_files(paths, progress=progress, note=note if i == 0 else None))
            for i, t in enumerate(systems)]
    for per_system in zip(*runs):
        path = per_system[0][0]
        errors = [o for _, o in per_system if isinstance(o, Exception)]
        yield path, errors[0] if errors else combine_results([o for _, o in per_system])
