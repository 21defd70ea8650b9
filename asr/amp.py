"""fp16 loss scaling for training on CUDA (``train.amp``): the scaler, and what a step whose
gradient overflowed in fp16 does (nothing: the scale is lowered and the next step tries again)."""

from __future__ import annotations

from typing import Callable

import torch

from asr.train_checks import TrainingError

# The fp16 loss scale below which no scale is taken to keep the gradient finite (fairseq's
# --min-loss-scale): 30 halvings in a row from torch's initial 65536.
MIN_LOSS_SCALE = 1e-4


def grad_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler:
    """fp16 loss scaling (train.amp), on CUDA only: where it is enabled, autocast is too."""
    return torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")


def skip_overflow(scaler: torch.amp.GradScaler, step: int, overflows: int, say: Callable[[str], None],
                  last_good: Callable[[], str]) -> bool:
    """After ``scaler.unscale_`` met a non-finite gradient: the scaler lowers its scale and the step
    trains nothing; says so and returns True. False when the scale stayed, as it does when the
    fp16 gradients were finite and only their fp32 norm overflowed: a non-finite gradient, for the
    caller's max_nan_steps rule. ``overflows``: this one and those before it since the last step
    that trained; once the scale falls below MIN_LOSS_SCALE the run stops (TrainingError)."""
    scale = scaler.get_scale()
    scaler.update()  # (always: it also clears the unscale_ record of this step)
    lowered = scaler.get_scale()
    if lowered >= scale:
        return False
    say(f"step {step}: gradient overflow at fp16 loss scale {scale:g}; batch skipped, scale lowered to {lowered:g}")
    if lowered < MIN_LOSS_SCALE:
        raise TrainingError(f"step {step}: the fp16 loss scale fell to {lowered:.2g} ({overflows} overflow(s) since "
                            f"the last step that trained): no loss scale keeps the gradient finite; the run stops: "
                            f"{last_good()} (lower train.lr or train.grad_clip, or train.amp=false)")
    return True
