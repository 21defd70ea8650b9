"""asr: recurrent-network CTC speech recognition."""

__version__ = "0.1.0"


def load_model(path=None, decoder="greedy", device="auto"):
    """Load a model directory (default: the packaged model) ready to ``.transcribe()``."""
    from asr.transcribe import load_model as _load

    return _load(path, decoder=decoder, device=device)
