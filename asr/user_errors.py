"""The errors a user can cause (bad config, manifest, corpus, model, LM...) and their one-line
description: the CLI prints them instead of a traceback, and so does each process of
``asr train --gpus N`` (through its launcher, once).

Looked up lazily: a class can only have been raised if its module was imported, and importing them
all up front would load torch for every command (~3 s for `asr download`).
"""

from __future__ import annotations

import errno
import os
import sys

_USER_ERRORS = (("asr.arpa", "LMError"), ("asr.config", "ConfigError"), ("asr.corpora", "CorpusError"),
                ("asr.manifest", "ManifestError"), ("asr.hotwords", "HotwordsError"), ("asr.lexicon", "LexiconError"),
                ("asr.model_dir", "ModelDirError"), ("asr.noise", "NoiseError"), ("asr.phones", "LexiconError"),
                ("asr.rescoring", "RescoringError"), ("asr.rnnlm", "RNNLMError"), ("asr.tokenizers", "TokenizerError"),
                ("asr.train_checks", "TrainingError"))


def asr_error_types() -> tuple[type[BaseException], ...]:
    """asr's own error classes among those imported so far."""
    return tuple(getattr(sys.modules[module], name) for module, name in _USER_ERRORS if module in sys.modules)


def user_error_types() -> tuple[type[BaseException], ...]:
    # OSError: an unwritable output, a full disk, a missing file; RuntimeError: what torch raises
    # for a bad input (CUDA out of memory, a shape no layer takes)
    return (RuntimeError, OSError, *asr_error_types())


def describe(e: BaseException) -> str:
    """One line for an error; an OSError's names its file(s) and errno ("ro/x: Permission denied (EACCES)")."""
    if not isinstance(e, OSError) or not e.strerror:
        return str(e)
    files = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    code = f" ({errno.errorcode[e.errno]})" if e.errno in errno.errorcode else ""
    strerror = e.strerror
    if e.errno == errno.EEXIST and e.filename2 is None and os.path.isfile(str(e.filename)):
        # mkdir's word for a file where a folder must go (an output's parent): "File exists" says too little
        strerror = "a file where a folder is needed"
    return f"{files + ': ' if files else ''}{strerror}{code}"
