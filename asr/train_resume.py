"""A training run's optimizer, and what a resumed run puts right before it goes on: its log cut
back to the epochs its checkpoint holds, the optimizer settings its config now gives, and a loss
scale where the saved run had none."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from asr.atomic import write_text_atomic
from asr.metrics import selection_key


def make_optimizer(model, tc) -> torch.optim.AdamW:
    """AdamW, with no weight decay on biases and normalization gains (the 1-D parameters)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)


def trim_log(run_dir: Path, epochs_done: int, finished: bool, best: tuple) -> tuple[bool, tuple]:
    """Cut RUN/log.jsonl back to the epochs last/ holds (``epochs_done``): a run killed after it
    logged an epoch but before that epoch's checkpoint trains and logs the epoch again, and a line
    the kill cut short would run into the next. A ``finished`` run (nothing left to train) keeps
    its end-of-run average's record, and any run an average that became best/; a run that trains on
    averages anew. Returns whether the run's own average is logged (a finished run that has one need not
    average again) and the key best/ ranks by:
    ``best`` (the checkpoint's, saved before the average), or an average's that became best/ (an
    epoch trained on must beat it to replace it)."""
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return False, best
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept, averaged = [], False
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # cut short by a kill
        if not line.endswith("\n"):
            continue  # whole JSON but unterminated: the next append would run into it
        if "averaged" in record:
            became_best = record.get("best") and (key := selection_key({**record, "epoch": 0})) is not None
            if became_best:
                best = min(best, key)
            if finished or became_best:  # best/ holds it: `asr plot training` stars its row
                kept.append(line)
        elif isinstance(record.get("epoch"), int) and record["epoch"] <= epochs_done:
            kept.append(line)
    if kept != lines:
        write_text_atomic(path, "".join(kept))
    # a finished run's own average comes last; one before later epochs was an earlier run's
    averaged = finished and bool(kept) and "averaged" in json.loads(kept[-1])
    return averaged, best


# Optimizer settings a resumed run applies (the state would keep the saved run's), by config name.
APPLIED = ("lr", "weight_decay", "final_lr_fraction")


def apply_new_settings(optimizer, scheduler, schedule, tc, saved_tc, step: int, say) -> None:
    """Put this config's train.lr, train.weight_decay and train.final_lr_fraction (``tc``; the
    saved run's: ``saved_tc``) into a resumed run's ``optimizer`` and ``scheduler`` (a LambdaLR of
    ``schedule``, all loaded from its train state, which keeps the old ones, while config.yaml would
    record the new): the schedule goes on from ``step`` at the new rates. Its warmup is kept, and
    said to be: it places the whole decay. Nothing changed: nothing is touched (an exact resume)."""
    changed = [f"train.{name} {getattr(saved_tc, name):g} -> {getattr(tc, name):g}"
               for name in APPLIED if getattr(saved_tc, name) != getattr(tc, name)]
    if tc.warmup_steps != saved_tc.warmup_steps:
        say(f"train.warmup_steps {saved_tc.warmup_steps} -> {tc.warmup_steps} is not applied: a resumed run keeps "
            "its warmup, which shapes its whole decay")
    if not changed:
        return
    schedule.final_fraction = tc.final_lr_fraction
    scheduler.base_lrs = [tc.lr] * len(optimizer.param_groups)
    rate = tc.lr * schedule(step)  # the rate of the next step, as LambdaLR sets it after a step
    for group, decay in zip(optimizer.param_groups, (tc.weight_decay, 0.0)):  # make_optimizer's groups
        group.update(initial_lr=tc.lr, lr=rate, weight_decay=decay)
    scheduler._last_lr = [rate] * len(optimizer.param_groups)
    say(f"resuming with {', '.join(changed)}: the schedule goes on from step {step} at the new rates")


def load_scaler(scaler: torch.amp.GradScaler, saved: dict, say) -> None:
    """The saved run's loss scale into ``scaler``. One saved without loss scaling (on CPU, or with
    train.amp=false) and resumed with it starts at the initial scale: torch refuses its empty state."""
    if scaler.is_enabled() and not saved:
        say(f"resuming with fp16 loss scaling, which the saved run did not use: it starts at scale "
            f"{scaler.get_scale():g}")
        return
    scaler.load_state_dict(saved)
