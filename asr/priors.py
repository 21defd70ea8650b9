"""Token priors of a CTC model, for prior-corrected beam search.

A CTC model gives posteriors p(k | x) per frame. Combined with an LM, Bayes' rule wants
likelihoods p(x | k) ∝ p(k | x) / p(k): without the division, tokens the model emits often (in
a small training set, the frequent pieces of frequent words) keep a head start that the LM
then has to fight. The prior p(k) is the model's own average posterior over training frames,
as hybrid systems estimate theirs; beam search subtracts ``prior_scale * log p(k)`` from each
non-blank token's log-probability (the blank's share is the blank penalty, tuned beside it).
Scales near 0.3 are usual for CTC with an external LM.

``asr priors MODEL MANIFEST`` writes MODEL/token_priors.json; ``asr lm tune --prior-scales``
chooses the scale on a dev set. Estimate on training audio, never on the test split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from asr.atomic import write_text_atomic
from asr.data import ManifestError, Utterance
from asr.decoding_config import PRIORS_FILE
from asr.evaluate import none_readable, readable_batches
from asr.model_dir import portable_path
from asr.transcribe import Transcriber
from asr.user_warnings import warn


@dataclass(frozen=True)
class PriorEstimate:
    """Token priors and what they were estimated from."""

    priors: list[float]
    frames: int
    used: int  # utterances whose frames were counted
    skipped: list[tuple[str, str]]  # (path, reason) of each unreadable utterance
    silent: int  # utterances read but left out: no sound for the model to run on


@torch.inference_mode()
def estimate_priors(transcriber: Transcriber, utterances: Sequence[Utterance], batch_seconds: float = 300.0
                    ) -> PriorEstimate:
    """Mean posterior of each token over every output frame. The frames are those transcribe runs
    (``readable_batches``): silence is left out (with a warning that counts it), and an utterance
    of the segmenter's ``max_seconds`` or more is run in the pieces it is cut into at pauses."""
    skipped: list[tuple[str, str]] = []
    silent: list[str] = []
    total, frames = torch.zeros(len(transcriber.tokenizer), dtype=torch.float64), 0
    for waves, _ in readable_batches(transcriber, list(utterances), batch_seconds, skipped, silent):
        log_probs, lengths = transcriber.log_probs(waves)
        valid = torch.arange(log_probs.shape[1])[None, :] < lengths[:, None]
        total += log_probs.double().exp()[valid].sum(0)
        frames += int(valid.sum())
    if frames == 0 and silent:  # read, but nothing to run the model on: not "unreadable"
        raise ManifestError(f"no speech to estimate token priors from: {len(silent)} of {len(utterances)} "
                            "utterances are silent or steady noise alone"
                            + (f", {len(skipped)} unreadable" if skipped else ""))
    if frames == 0:
        raise ManifestError(none_readable(len(utterances), skipped, "to estimate token priors from"))
    if not torch.isfinite(total).all():  # a model whose outputs are NaN: priors no search could use
        raise ManifestError(f"the model's outputs on some of the {len(utterances) - len(skipped) - len(silent)} "
                            "utterances are not finite (NaN or inf): no token priors written; check the model "
                            "(asr evaluate) and the audio")
    if silent:  # read, but not among the frames counted: say so, as the unreadable ones are said
        warn("token priors", f"{len(silent)} of {len(utterances)} utterances are silent (no sound, or steady noise "
                             "alone: no speech for the model to run on): left out")
    return PriorEstimate((total / frames).tolist(), frames, len(utterances) - len(skipped) - len(silent), skipped,
                         len(silent))


def save_priors(model_dir: str | Path, priors: Sequence[float], frames: int, manifest: str | Path,
                tokens: Sequence[str] | None = None) -> Path:
    """``tokens``: the model's, kept so that priors of another model of the same size are told apart.
    Eight significant digits: a token the model almost never emits keeps its prior (not 0.0)."""
    data = {"manifest": portable_path(str(manifest)), "frames": frames, "priors": [float(f"{p:.8g}") for p in priors]}
    if tokens is not None:
        data["tokens"] = list(tokens)
    return write_text_atomic(Path(model_dir) / PRIORS_FILE, json.dumps(data, indent=1) + "\n")


def systems_left_out(model_dir: str | Path) -> list[str]:
    """The systems besides its first (the directory itself) of a package that rescores, whose own
    priors ``asr priors MODEL`` leaves as they were; [] for a plain model (or an unreadable
    rescoring file, which its own loader names)."""
    from asr.rescoring_files import RESCORING_FILE, RescoringError, read_rescoring

    settings = Path(model_dir) / RESCORING_FILE
    if not settings.is_file():
        return []
    try:
        models = read_rescoring(settings)[0]
    except RescoringError:
        return []
    return [m for m in models if Path(m).resolve() != Path(model_dir).resolve()]
