"""The learning-rate schedule (linear warmup, then cosine decay to a floor) and its fit to a
wall-clock budget.

With ``train.time_budget_minutes`` a run re-plans its length after every epoch: as many epochs
as the time left allows at its mean epoch's pace (never more than ``train.epochs``), and the
cosine decay is stretched or squeezed to end there, going on from the rate it has reached (so a
plan that swings with a noisy host's pace never sends the rate back up). A run that must stop early thus still
anneals, instead of being cut off at a high learning rate (budgeted training, Li et al. 2020).
"""

from __future__ import annotations

import math
import statistics

import torch

from asr import distributed


class WarmupCosine:
    """The learning-rate factor at each step, for ``torch.optim.lr_scheduler.LambdaLR``.

    ``retarget`` moves the end of the decay mid-run (a time budget re-plans the run's length):
    the decay goes on from where it is to the new end, so the rate never jumps, up or down.
    """

    def __init__(self, warmup_steps: int, total_steps: int, final_fraction: float):
        self.warmup_steps, self.total_steps, self.final_fraction = warmup_steps, total_steps, final_fraction
        self.anchor_step, self.anchor_progress = warmup_steps, 0.0  # where the current plan's decay starts

    def progress(self, step: int) -> float:
        """How far along the cosine the decay is at ``step``: 0 at its start, 1 at the floor."""
        span = max(1, self.total_steps - self.anchor_step)
        return min(1.0, self.anchor_progress + (1 - self.anchor_progress) * max(0, step - self.anchor_step) / span)

    def retarget(self, step: int, total_steps: int) -> None:
        """From ``step`` on, decay to the floor at ``total_steps`` instead (a plan made longer slows
        the decay; one made shorter hastens it; a decay at its floor stays there)."""
        if step > self.anchor_step:
            self.anchor_progress, self.anchor_step = self.progress(step), step
        self.total_steps = total_steps

    def rescale(self, factor: float) -> None:
        """Count steps ``factor`` times as many to the run (one resumed with another number of
        processes, or batches of another size): warmup, decay and any retargeting keep their
        places in the data, so that step ``s * factor`` has the rate step ``s`` had. Warmup's end
        and the decay's start may become fractional and stay so: rounded, they would shift the
        whole decay. The end, the steps of whole epochs, stays whole."""
        self.warmup_steps = self.warmup_steps * factor
        self.total_steps = round(self.total_steps * factor)
        self.anchor_step = self.anchor_step * factor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:  # capped: a fractional warmup's last step would pass 1
            return min(1.0, (step + 1) / self.warmup_steps)
        floor = self.final_fraction
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * self.progress(step)))


def warmup_warning(warmup_steps: int, total_steps: int, lr: float, configured: int | None = None,
                   resumed: bool = False) -> str | None:
    """A warning when warmup takes over half of a run's ``total_steps`` (a small corpus makes few
    steps an epoch, and train.warmup_steps counts steps): the rate then peaks below ``lr``, or
    decays over what little is left. None otherwise. Left as configured, not capped: the same
    config gives the same schedule on any corpus.

    ``configured``: the train.warmup_steps the run was given, when ``warmup_steps`` is it rescaled
    to this run's steps (a resumed run on another number of processes). ``resumed``: the run keeps
    its warmup, so the advice is to start anew."""
    if warmup_steps <= total_steps / 2:
        return None
    named = f"train.warmup_steps={warmup_steps}"
    if configured is not None and configured != warmup_steps:
        named = f"train.warmup_steps={configured} ({warmup_steps} of this run's steps)"
    shorter = f"a smaller train.warmup_steps (a tenth of the run: {total_steps // 10})"  # 0: no warmup
    if resumed:
        shorter = f"a run started anew with {shorter}: a resumed run keeps its warmup"
    if warmup_steps >= total_steps:
        peak = lr * total_steps / warmup_steps  # the rate of the last step: (step + 1) / warmup_steps of lr
        span = "more than" if warmup_steps > total_steps else "all of"
        share = 100 * total_steps / warmup_steps
        return (f"warning: {named} is {span} the run's {total_steps} steps: the learning rate rises to {peak:.3g}, "
                f"{share:.2g}% of train.lr={lr:g}, and never decays; give {shorter}" if share < 99.5 else
                f"warning: {named} is {span} the run's {total_steps} steps: the learning rate reaches train.lr={lr:g} "
                f"on the last step, and never decays; give {shorter}")
    return (f"warning: {named} is {100 * warmup_steps / total_steps:.0f}% of the run's {total_steps} steps: the "
            f"learning rate decays over the last {total_steps - warmup_steps} only; give {shorter}")


def epochs_within_budget(budget_seconds: float, elapsed_seconds: float, epochs_done: int,
                         epoch_seconds: float, max_epochs: int) -> int:
    """How many epochs the whole run can have: those done, plus as many more of ``epoch_seconds``
    as fit in the budget left; at most ``max_epochs``. A budget of 0 means no budget."""
    if budget_seconds <= 0:
        return max_epochs
    more = int(max(0.0, budget_seconds - elapsed_seconds) // max(epoch_seconds, 1e-9))
    return max(epochs_done, min(max_epochs, epochs_done + more))


def replan_to_budget(tc, epochs: int, done: int, epoch_times: list[float], spent: float, d, device, say) -> int:
    """The epochs that fit ``train.time_budget_minutes`` (``tc``: a config's train section) with
    ``done`` of them after ``spent`` seconds, given this process's ``epoch_times`` (``epochs``
    planned so far). The pace is the mean epoch (validation included) after the first, which
    decodes the audio, so that the plan does not swing with each epoch's noise; summed over ranks
    (``d``: asr.distributed.Dist) and divided, so that every rank plans the same number of epochs."""
    pace = statistics.mean(epoch_times[1:] or epoch_times)
    clock = distributed.all_sum(torch.tensor([spent, pace], dtype=torch.float64, device=device), d) / d.world_size
    spent, pace = float(clock[0]), float(clock[1])
    planned = epochs_within_budget(tc.time_budget_minutes * 60, spent, done, pace, tc.epochs)
    if planned != epochs:
        say(f"time budget: {spent / 60:.1f} of {tc.time_budget_minutes:g} min spent, "
            f"{pace:.0f} s per epoch: {planned} epochs in all (were {epochs})")
    return planned
