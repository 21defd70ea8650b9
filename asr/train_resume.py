"""A training run's optimizer, and what a resumed run puts right before it goes on: where it goes
on from (``resume_point``: the step and the batch of its epoch, whatever changed since), its log
cut back to the epochs its checkpoint holds, the optimizer settings its config now gives, and a
loss scale where the saved run had none."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
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
    its end-of-run average's record, and any run the record of an average that became best/; a run
    that trains on averages anew. Returns whether the run's own average is logged (a finished run
    that has one need not average again) and the key best/ ranks by: ``best`` (the checkpoint's,
    saved before the average), or an average's that became best/ (an epoch trained on must beat it
    to replace it)."""
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


# The sampler settings that shape an epoch's batches, by the names a user sets them with.
BATCH_SIZE = (("batch_seconds", "train.batch_seconds"), ("max_batch_size", "train.max_batch_size"))
BATCH_ORDER = (("speed_factors", "augment.speed_factors"), ("sortagrad", "train.sortagrad"), ("seed", "train.seed"))


def epoch_starts(sampler, counts: list[int]) -> list[int]:
    """The step each epoch of ``counts`` (its batches: asr.batching.BucketBatchSampler.batch_counts)
    starts at in each of ``sampler``'s processes, and after them the step they end at."""
    return [0, *itertools.accumulate(sampler.steps(n) for n in counts)]


def resume_point(state: dict, scheduler, schedule, sampler, saved, say, counts: list[int],
                 max_duration: tuple[float, float] | None = None) -> tuple[float, int, int]:
    """Load ``state``'s learning-rate schedule into ``scheduler`` (a LambdaLR of ``schedule``, an
    asr.schedule.WarmupCosine) and find where the resumed run goes on: (the factor that turns the
    state's steps into steps now, the step it goes on from, the batches of its epoch that this
    process skips). ``sampler``: this run's asr.batching.BucketBatchSampler, ``counts`` its
    batch_counts of the first epochs (more are counted as needed); ``saved``: one with the settings
    and processes of the run that saved ``state`` (its last/config.yaml), on today's utterances;
    ``max_duration``: (the saved run's train.max_duration, this run's).

    Another number of processes, batch size or train.max_duration makes another number of steps,
    so training is measured in epochs instead: the schedule is rescaled by ``factor`` (the steps of
    the saved run's planned epochs, now over then), the position kept at the same fraction of the
    epoch (``_position``), and the step is that of the position (``_step_of``). An exact resume keeps
    the saved step and says nothing; else one line says what changed."""
    scheduler.load_state_dict(state["scheduler"])  # the schedule's own plan, in the saved run's steps
    saved, rebuilt = _saved_run(state, saved, max_duration)
    kept = state.get("batch_counts") or []  # the saved run's own (a state from before they were kept: none)
    planned = state.get("planned_epochs") or max(state["epoch"], 1)  # the epochs the saved schedule spans
    need = max(planned, state["epoch"])
    now = epoch_starts(sampler, counts + sampler.batch_counts(need, start=len(counts)))
    then = _epoch_starts_then(state, saved, kept, need, rebuilt)
    factor = now[planned] / max(1, then[planned])
    skip, at, where = _position(state, sampler, saved, kept, rebuilt)
    size, order = _changes(saved, sampler, BATCH_SIZE), _changes(saved, sampler, BATCH_ORDER)
    utterances = not rebuilt or saved.durations != sampler.durations
    processes = state["world_size"] != sampler.world_size
    if factor == 1 and not (processes or where or size or order or utterances):
        return factor, state["step"], skip  # exact: the step as saved, whatever its counts would make it
    step = _step_of(state, now, then, factor, skip, at, own=len(kept) >= need or rebuilt)
    if factor == 1 and not where and not size and not utterances:
        return factor, step, skip  # another number of processes that makes the same steps
    what = _what_changed(state["world_size"], sampler.world_size, size, order, utterances, max_duration)
    rescaled = "nothing to rescale"
    if factor != 1:
        warmup = schedule.warmup_steps
        schedule.rescale(factor)
        rescaled = (f"step {state['step']} goes on as step {step}, the learning-rate schedule rescaled to the "
                    f"same point of training (warmup {warmup:g} -> {schedule.warmup_steps:g} steps)")
    say(f"resuming with {' and '.join(what)}: {now[planned]} steps in {planned} epoch(s), {then[planned]} before: "
        f"{rescaled}{where}")
    return factor, step, skip


def _epoch_starts_then(state: dict, saved, kept: list[int], need: int, rebuilt: bool) -> list[int]:
    """The step each of the saved run's first ``need`` epochs started at, and where they end: by its
    own batch counts (``kept``), or those ``saved`` makes; an older state on utterances not known
    here: its first epoch's steps each epoch, as it planned."""
    if len(kept) >= need or rebuilt or not state.get("steps_per_epoch"):
        return epoch_starts(saved, kept[:need] if len(kept) >= need else saved.batch_counts(need))
    return [e * state["steps_per_epoch"] for e in range(need + 1)]


def _position(state: dict, sampler, saved, kept: list[int], rebuilt: bool) -> tuple[int, float, str]:
    """Where in its epoch the resumed run goes on: (the batches this process skips, the position in
    today's steps, of which they are the whole ones, and a note for the log where the batches differ,
    else ""). The same batches (another number of processes only): the same batch, rounded down to
    whole steps. Other batches: the same fraction of them, whose utterances are not the saved run's
    (until the epoch ends some may come twice and others not at all)."""
    epoch, position, world_size = state["epoch"], state["global_batch_in_epoch"], sampler.world_size
    skip, at = position // world_size, position / world_size  # global batches: any world size
    if not position:
        return skip, at, ""
    batches_now, batches_then = sampler.global_batches(epoch), saved.global_batches(epoch)
    if rebuilt and batches_now == batches_then:
        return skip, at, ""
    # the saved run's epoch: as kept, where its batches cannot be rebuilt (a state from before it was
    # kept: the saved settings on today's utterances, an estimate)
    n_now, n_then = len(batches_now), len(batches_then)
    if not rebuilt:
        n_then = (kept[epoch] if len(kept) > epoch else state.get("epoch_batches")) or n_then
    share = min(1.0, position / n_then) * n_now  # the batches of today's the position is worth
    skip = round(share) // world_size
    return skip, share / world_size, (
        f"; epoch {epoch + 1} goes on after {skip * world_size} of its {n_now} batches, the same fraction as "
        f"{position} of {n_then} before (other batches: until it ends, some of its utterances may come twice "
        "and others not at all)")


def _step_of(state: dict, now: list[int], then: list[int], factor: float, skip: int, at: float, own: bool) -> int:
    """The step of the resumed position: the steps of the epochs before it now, plus the batches
    skipped, less the steps the saved run did not take (batches of unreadable audio; known where its
    ``own`` counts tell, not from an estimate), in today's steps as its schedule's (else the rate
    jumps): the step nearest its point (``skip`` is rounded), ending as short of the schedule's end as
    the saved run would have."""
    epoch = state["epoch"]
    position_then = then[epoch] + state["global_batch_in_epoch"] // state["world_size"]
    not_taken = max(0, position_then - state["step"]) if own else 0
    untaken = max(0, round(not_taken * factor - (at - skip))) if not_taken else 0
    return max(0, now[epoch] + skip - untaken)


def _what_changed(world_then: int, world_now: int, size: list[str], order: list[str], utterances: bool,
                  max_duration: tuple[float, float] | None) -> list[str]:
    """What a resumed run's log line names as changed since the saved run."""
    what = [f"{world_then} -> {world_now} process(es)"] if world_then != world_now else []
    if size:
        what.append(f"another batch size ({', '.join(size)})")
    if utterances:
        then_limit, now_limit = max_duration or (None, None)
        what.append("other utterances (" + (f"train.max_duration {then_limit:g} -> {now_limit:g}"
                                            if then_limit != now_limit else "their audio changed since") + ")")
    if order or not what:  # none named: the batches differ for a reason not known here
        what.append(f"other batches ({', '.join(order) or 'from the same settings'})")
    return what


def durations_id(durations: list[float]) -> str:
    """What tells a training set's utterance durations apart (kept in the train state: whether a
    resumed run's batches can be rebuilt)."""
    return hashlib.sha1(repr([float(d) for d in durations]).encode()).hexdigest()


def _saved_run(state: dict, saved, max_duration: tuple[float, float] | None):
    """``saved`` (a sampler on today's utterances) on the utterances of the run that saved ``state``,
    and whether those are known: today's, less any over a lower train.max_duration then
    (``max_duration``: then, now). Those that a lower one now leaves out are not known here; nor
    are others, should the audio have changed since (the state's ``durations_id`` tells). A state
    from before that was kept: today's, unless train.max_duration is lower now."""
    then, now = max_duration or (math.inf, math.inf)
    if then < now:
        saved = copy.copy(saved)
        saved.durations = [d for d in saved.durations if d <= then]  # as load_split keeps them
    kept = state.get("durations_id")
    return saved, (durations_id(saved.durations) == kept if kept else then <= now)


def _changes(saved, sampler, names) -> list[str]:
    """``names``' settings that differ between two samplers, as 'name old -> new'."""
    def shown(value) -> str:
        return f"{value:g}" if isinstance(value, float) else str(list(value) if isinstance(value, tuple) else value)

    return [f"{name} {shown(getattr(saved, key))} -> {shown(getattr(sampler, key))}"
            for key, name in names if getattr(saved, key) != getattr(sampler, key)]
