"""The learning-rate schedule (linear warmup, then cosine decay to a floor) and its fit to a
wall-clock budget.

With ``train.time_budget_minutes`` a run re-plans its length after every epoch: as many epochs
as the time left allows at its mean epoch's pace (never more than ``train.epochs``), and the
cosine decay is stretched or squeezed to end there. A run that must stop early thus still
anneals, instead of being cut off at a high learning rate (budgeted training, Li et al. 2020).
"""

from __future__ import annotations

import math


class WarmupCosine:
    """The learning-rate factor at each step, for ``torch.optim.lr_scheduler.LambdaLR``.

    ``total_steps`` may change mid-run: the decay then heads for the new end from where it is.
    """

    def __init__(self, warmup_steps: int, total_steps: int, final_fraction: float):
        self.warmup_steps, self.total_steps, self.final_fraction = warmup_steps, total_steps, final_fraction

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        floor = self.final_fraction
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def epochs_within_budget(budget_seconds: float, elapsed_seconds: float, epochs_done: int,
                         epoch_seconds: float, max_epochs: int) -> int:
    """How many epochs the whole run can have: those done, plus as many more of ``epoch_seconds``
    as fit in the budget left; at most ``max_epochs``. A budget of 0 means no budget."""
    if budget_seconds <= 0:
        return max_epochs
    more = int(max(0.0, budget_seconds - elapsed_seconds) // max(epoch_seconds, 1e-9))
    return max(epochs_done, min(max_epochs, epochs_done + more))
