"""asr: recurrent-network CTC speech recognition."""

__version__ = "0.1.0"

# load_model's decoder names and the CLI's --decoder choices: here, where `asr --help` reads
# them without importing asr.transcribe (and torch)
DECODERS = ("auto", "greedy", "beam")


def load_model(path=None, decoder="auto", device="auto", **decoder_options):
    """Load a model directory (default: the packaged model) ready to ``.transcribe()``.

    ``decoder="auto"`` rescores with the package's systems when it has a ``rescoring.yaml``, else
    searches with the model's packaged LM when it has one, else decodes greedily; ``greedy`` and
    ``beam`` use the package's own model alone.

    ``model.transcribe(path_or_array, sample_rate=None, decoder=None, lm=None, **options)`` returns a
    Result with ``.text``, ``.segments`` and ``.words`` (see ``asr/results.py``); a decoder, LM
    or search option given there is that call's alone, and ``workers``/``batch_size`` (here or
    there) say how it runs, never which decoder runs."""
    from asr.transcribe import RUN_OPTIONS, load_model as _load

    from asr.rescoring_files import load_rescoring, packaged_rescoring

    decoder = "auto" if decoder is None else decoder  # None: the default, as a call's decoder=None is
    running = {k: decoder_options.pop(k) for k in RUN_OPTIONS if k in decoder_options}
    # how it runs is not how it searches; an option given as None is not given (lm=None: the package's)
    settings = packaged_rescoring(path, decoder, any(v is not None for v in decoder_options.values()))
    if settings:
        return load_rescoring(settings, lambda model: _load(model, device=device, **running))
    return _load(path, decoder=decoder, device=device, **running, **decoder_options)
