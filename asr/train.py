"""The training loop: AdamW with warmup and cosine decay, length-bucketed batches,
mixed precision on GPU, data parallelism, per-epoch validation, atomic checkpoints and exact
resume.

A run directory holds::

    last/        model directory + train_state.pt (optimizer, schedule, position, data identity)
    best/        model directory with the best validation WER so far (ties: lower CER, then loss)
    log.jsonl    one JSON object per epoch (train_loss NaN for one in which no step trained)
    tb/          TensorBoard logs

Every step reseeds torch from (seed, step), and each epoch's batches are a function of
(seed, epoch), so a run resumed from ``last/`` takes exactly the steps the killed run would
have taken. The learning-rate schedule's length is the sum of the steps of the run's epochs (each
packs its own number of batches). Resumed with another number of processes, batch size or
train.max_duration, a run goes on from the same fraction of training instead: the schedule, which
counts steps, is rescaled to the run's new steps, and the position in the epoch is kept (the same
batch if the batches are the same, rounded down to whole steps; else the same fraction of the new
ones), the step being that of the position: asr.train_resume.resume_point.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import torch

from asr import distributed
from asr.amp import grad_scaler, skip_overflow
from asr.batching import BatchLoader, BucketBatchSampler
from asr.config import Config, ConfigError
from asr.config_files import load_config, save_config
from asr.data import read_manifest
from asr.losses import forward_backward, log
from asr.model import AcousticModel
from asr.model_dir import save_model_dir
from asr.noise import NoiseError
from asr.provenance import record_start, provenance_files
from asr.schedule import WarmupCosine, replan_to_budget, warmup_warning
from asr.segmenter import Segmenter, SegmenterOptions
from asr.selection import average_last_epochs, end_epoch
from asr.text import plural
from asr.train_checks import (TrainingError, check_trainable_lengths, nothing_readable, unreadable_files,
                              valid_loss_note, warn_of_silence)
from asr.train_log import epoch_progress, epoch_record, log_step, open_tensorboard, progress_bar, why_untrained
from asr.train_resume import (apply_new_settings, durations_id, epoch_starts, load_scaler, make_optimizer,
                              resume_point, trim_log)
from asr.train_setup import attach_phone_head, compute_cmvn, data_identity, describe_run, load_split, model_to_train
from asr.user_errors import asr_error_types, describe
from asr.weight_perturbation import WeightDrop, WeightNoise


def check_trainable(cfg: Config) -> None:
    """What a config needs to train that Config itself cannot ask (other commands load configs
    without a manifest); `asr train --gpus N` asks before it starts N processes."""
    if not cfg.train.train_manifest:
        raise ConfigError("train.train_manifest is not set: give it in the config or as "
                          "train.train_manifest=MANIFEST.jsonl")
    for manifest in (cfg.train.train_manifest, cfg.train.valid_manifest):
        if manifest and not Path(manifest).is_file():
            read_manifest(manifest)  # raises its one-line error (not found, a directory); reads nothing
    a, dim = cfg.augment, cfg.features.dim
    if a.freq_masks > 0 and a.freq_mask_width >= dim:  # (a saved model may hold such a config: refused here only)
        raise ConfigError(f"augment.freq_mask_width {a.freq_mask_width} is as wide as the {dim} features: a mask "
                          f"could blank them all; give augment.freq_mask_width below {dim} (or augment.freq_masks=0)")


def train(cfg: Config, resume: bool = False, stop_at_step: int | None = None) -> Path:
    """Train per ``cfg``; returns the run directory. ``stop_at_step`` ends the run right after
    that step's checkpoint, as if the process had been killed there (for tests). torch's thread
    count and denormal flushing, which the run sets, are as they were when it returns."""
    threads, flushing = torch.get_num_threads(), _flushes_denormals()
    try:
        return _train(cfg, resume, stop_at_step)
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flushing)


def _flushes_denormals() -> bool:
    """Whether torch flushes denormal floats to zero (it has a setter, no getter): 1e-40 is one."""
    return torch.tensor([1e-40]).mul(1.0).item() == 0


def _train(cfg: Config, resume: bool, stop_at_step: int | None) -> Path:
    tc = cfg.train
    check_trainable(cfg)
    run_dir = Path(tc.output_dir)
    t_start = time.time()
    torch.manual_seed(tc.seed)
    torch.set_flush_denormal(True)  # denormals slowed CPU epochs 5x in long runs
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    d, device = distributed.setup(tc.device)
    scaler = grad_scaler(device, tc.amp)
    use_amp = scaler.is_enabled()  # fp16 autocast goes with its loss scaling
    say = log if d.is_main else (lambda message: None)

    data = data_identity(cfg)  # kept in the train state: --resume refuses data that changed since
    try:  # an unusable augment.noise_dir is found as the model is built
        tokenizer, model, state, saved_cfg = model_to_train(cfg, resume, device, say, data)
    except NoiseError as e:
        raise TrainingError(str(e)) from None
    if d.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        record_start(run_dir, data, tc.init_from, resumed=state is not None)

    lexicon = attach_phone_head(model, cfg, state, device)
    train_set = load_split(tc.train_manifest, cfg, tokenizer, "train", quiet=not d.is_main, phone_lexicon=lexicon,
                           bpe_dropout=tc.bpe_dropout)  # the valid set keeps BPE's own spelling
    check_trainable_lengths(train_set, model, cfg.augment.speed_factors, say)
    valid_set = None
    if tc.valid_manifest and d.is_main:  # read now: an unreadable file would stop validation at an epoch's end
        # cut as evaluate cuts (Transcriber.speech), so the best checkpoint is picked on what it scores;
        # one of max_seconds or more is kept whole: validate cuts it at pauses, as transcribe does
        edges = Segmenter.on_frames(cfg.features.sample_rate, model.frame_shift)
        longest = int(edges.options.max_seconds * cfg.features.sample_rate)
        valid_set = load_split(tc.valid_manifest, cfg, tokenizer, "valid", max_utts=tc.valid_max_utts, read_audio=True,
                               span=lambda s: edges.speech_span(s) if len(s) < longest else (0, len(s)),
                               as_evaluated=True)  # its digital silence: found by validate as it reads
        if (note := valid_loss_note(valid_set, model)) is not None:
            say(note)
    if state is None and cfg.features.normalize == "global" and not tc.init_from:
        t0 = time.time()
        read = compute_cmvn(model, train_set, device, d)
        say(f"feature statistics from {plural(read, 'utterance')} in {time.time() - t0:.1f} s"
            + (f"; {len(train_set) - read} utterance(s) with unreadable audio left out of training"
               if read < len(train_set) else ""))
    weight_noise = WeightNoise(model.parameters(), tc.weight_noise)
    weight_drop = WeightDrop(model.named_parameters(), tc.weight_drop)
    describe_run(cfg, model, tokenizer, device, d, weight_noise, weight_drop, say, train_set.durations)

    def bucket_sampler(c: Config, rank: int, world_size: int) -> BucketBatchSampler:
        return BucketBatchSampler(train_set.durations, c.train.batch_seconds, c.train.max_batch_size, shuffle=True,
                                  sortagrad=c.train.sortagrad, seed=c.train.seed,
                                  speed_factors=c.augment.speed_factors, rank=rank, world_size=world_size)

    sampler = bucket_sampler(cfg, d.rank, d.world_size)
    # each epoch packs its own number of batches (sortagrad's sorted first one fewer): the schedule's
    # length is their sum, and starts[e] the step epoch e starts at (the same on every rank)
    counts = sampler.batch_counts(max(tc.epochs, state["epoch"] if state is not None else 0))
    starts = epoch_starts(sampler, counts)
    durations = durations_id(train_set.durations)  # kept: whether a resumed run can rebuild these batches
    optimizer = make_optimizer(model, tc)
    epochs, spent_before = tc.epochs, 0.0  # epochs: as planned now (train.time_budget_minutes re-plans)
    if state is not None and tc.time_budget_minutes:
        epochs, spent_before = min(state.get("planned_epochs", tc.epochs), tc.epochs), state.get("seconds", 0.0)
    schedule = WarmupCosine(tc.warmup_steps, starts[epochs], tc.final_lr_fraction)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step, start_epoch, skip, nan_run, saved_step = 0, 0, 0, 0, None  # saved_step: of the last checkpoint
    overflows = 0  # fp16 gradient overflows since the last step that trained
    # the last step that updated the weights (None: none yet), and that step as of the last checkpoint
    trained_step = saved_trained = None  # (weights change only in such steps: last/ holds that step's)
    # (trained step,) whose weights validated to a non-finite loss, when the latest validation did; and
    # whether last/ holds those weights: no checkpoint to go back to then
    invalid, saved_invalid = None, False
    best = (math.inf,) * 3  # the best model's selection_key
    # a resumed epoch's sums so far (loss, utterances, too short, audio seconds, phone loss, phone
    # utterances, unreadable; then seconds; then non-finite steps): its log line then covers the whole epoch
    carried = [0.0] * 9
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        # the saved run's settings on today's utterances (the same data: data_identity; resume_point
        # finds the saved run's among them, where another train.max_duration chose others)
        saved_sampler = bucket_sampler(saved_cfg, 0, state["world_size"])
        factor, step, skip = resume_point(state, scheduler, schedule, sampler, saved_sampler, say, counts,
                                          max_duration=(saved_cfg.train.max_duration, tc.max_duration))
        load_scaler(scaler, state["scaler"], say)
        start_epoch, nan_run, overflows = state["epoch"], state["nan_run"], state.get("overflows", 0)
        # saved before ties were broken: a tie keeps the best, as it did
        best = tuple(state.get("best_key") or (state["best_wer"], -math.inf, -math.inf))
        if tc.valid_manifest and best[0] < 0:  # ranked by epoch (no valid set): validation outranks it
            best = (math.inf,) * 3
        # steps are counted in this run's: ``factor`` (the saved plan's whole run's steps now over then) turns
        # the state's into them
        saved_step = step
        trained = state.get("trained_step", state["step"])  # a state saved before it was kept: as trained
        # the resumed step, if it trained; else rescaled, and never after it
        trained_step = saved_trained = (None if trained is None else step if trained == state["step"]
                                        else min(step, round(trained * factor)))
        scheduler.last_epoch = step
        # the state's plan: another train.epochs now (or a state from before the plan summed its epochs' steps)
        if schedule.total_steps != starts[epochs]:
            schedule.retarget(step, starts[epochs])
        apply_new_settings(optimizer, scheduler, schedule, tc, saved_cfg.train, step, say)
        if skip:
            saved = state.get("epoch_totals", carried)
            carried = list(saved) + [0.0] * (len(carried) - len(saved))  # an older state keeps fewer sums
    averaged, best = (trim_log(run_dir, start_epoch, start_epoch >= epochs, best) if state and d.is_main
                      else (False, best))  # epochs logged past last/ are trained and logged again, once
    warmup = round(schedule.warmup_steps)  # a resumed run's own, in this run's steps (resume_point)
    own = saved_cfg.train.warmup_steps if state else tc.warmup_steps  # a resumed run keeps its own (apply_new_settings)
    if step < warmup and (warning := warmup_warning(warmup, starts[epochs], tc.lr, own, resumed=bool(state))):
        say(warning)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if d.enabled else model

    writer = open_tensorboard(run_dir, step, resumed=bool(state)) if d.is_main else None

    def epoch_totals() -> list[float]:
        """This epoch's sums so far over all ranks (every rank calls it), carried ones included."""
        local = torch.tensor([loss_sum, n_utts, too_short, audio_seconds, phone_sum, n_phone, loader.unreadable,
                              0.0, non_finite], dtype=torch.float64, device=device)
        totals = distributed.all_sum(local, d).tolist()
        totals[7] = time.time() - t0  # wall time: the same on every rank, not summed
        return [a + b for a, b in zip(totals, carried)]

    def last_good() -> str:
        """The checkpoint to go back to: last/, if a step that trained came before it."""
        last = run_dir / "last"
        if saved_step is None:
            return "no checkpoint was saved before it"
        if saved_trained is None:
            return f"{last} (step {saved_step}) holds the initial weights: no step before it trained"
        if saved_invalid:
            return (f"no checkpoint has a finite valid loss: {last} (saved at step {saved_step}) holds the weights "
                    f"of step {saved_trained}, whose valid_loss was not finite")
        if saved_trained == saved_step:
            return f"the last good checkpoint is {last} (step {saved_step})"
        return (f"the last good checkpoint is {last} (saved at step {saved_step} with the weights of step "
                f"{saved_trained}: no step between them trained)")

    def ensure_finite() -> None:
        """Stop before non-finite weights are validated or saved: no later step brings them back."""
        if not _finite(model):  # the weights are the same on every rank
            raise TrainingError(f"step {step}: the weights became non-finite (NaN or inf) at lr "
                                f"{step_lr:.3g}; the run stops: {last_good()} (lower train.lr "
                                "or train.grad_clip)")

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        nonlocal saved_step, saved_trained, saved_invalid
        ensure_finite()
        sums = epoch_totals() if batch_in_epoch else [0.0] * len(carried)
        if d.is_main:
            train_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "scaler": scaler.state_dict(), "step": step, "epoch": epoch, "world_size": d.world_size,
                           "global_batch_in_epoch": batch_in_epoch * d.world_size, "best_wer": best[0],
                           "best_key": list(best), "nan_run": nan_run, "overflows": overflows, "planned_epochs": epochs,
                           "batch_counts": counts, "durations_id": durations,
                           "epoch_totals": sums, "seconds": spent_before + time.time() - t_start, "data": data,
                           "trained_step": trained_step}
            if model.phone_head is not None:
                train_state["phone_head"] = model.phone_head.state_dict()
            # in the directory before it appears: a kill never leaves a last/ that --resume cannot read
            save_model_dir(run_dir / "last", cfg, model, tokenizer,
                           extra_files={"train_state.pt": lambda path: torch.save(train_state, path),
                                        **provenance_files(run_dir)})
        saved_step, saved_trained, saved_invalid = step, trained_step, invalid == (trained_step,)
        distributed.barrier(d)

    model.train()
    epoch, epoch_times = start_epoch, []
    silence_rms = SegmenterOptions().silence_rms  # digital silence, as validation and evaluate judge it
    while epoch < epochs:
        sampler.set_epoch(epoch, skip)
        train_set.set_epoch(epoch)
        loader = BatchLoader(train_set, sampler, pin_memory=device.type == "cuda")
        loss_sum, n_utts, too_short, audio_seconds, t0 = 0.0, 0, 0, 0.0, time.time()
        phone_sum, n_phone, non_finite = 0.0, 0, 0
        step_lr = scheduler.get_last_lr()[0]  # the rate of the latest step (logged: the epoch's last one's)
        silent = [] if epoch == start_epoch else None  # looked for in the first epoch this process runs
        bar = progress_bar(sampler.steps(counts[epoch]) - skip, f"epoch {epoch + 1}/{epochs}",
                           tc.progress and d.is_main)
        from_start = skip == 0  # a resumed epoch may have nothing left to read
        for batch_in_epoch, batch in enumerate(loader, start=skip):
            if not distributed.all_true(batch is not None, d, device):
                if bar is not None:  # a batch of unreadable audio on some rank: every rank skips this step
                    bar.update(1)
                continue
            torch.manual_seed((tc.seed * 1_000_003 + step * d.world_size + d.rank) % 2**64)  # dropout, SpecAugment
            if silent is not None:  # zero padding adds nothing to the energy
                rms = (batch.waveforms.pow(2).sum(1) / batch.wave_lengths.clamp(min=1)).sqrt()
                silent += [i for i, r in zip(batch.indices, rms.tolist()) if r < silence_rms]
            batch = batch.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            # the gradient at perturbed weights; the update to the clean ones
            # one mask on all ranks; not dropout's stream (% 2**64: a seed such as 20240501 overflows torch's)
            drop_seed = ((tc.seed * 1_000_003 + step) * 1_000_003 + 17) % 2**64
            with weight_noise.applied(), weight_drop.applied(seed=drop_seed):
                b_loss, b_n, b_short, finite, b_phone, b_n_phone = forward_backward(
                    ddp, batch, tokenizer.blank_id, scaler, use_amp, device,
                    inter=(cfg.inter_ctc_layer, tc.inter_ctc_weight), phone_weight=tc.phone_ctc_weight,
                    confidence=tc.confidence_penalty)
            finite = distributed.all_true(finite, d, device)
            too_short += b_short
            step += 1
            empty, grad_norm = distributed.all_true(b_n == 0, d, device), None
            if finite and not empty:
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                # Clipping by an infinite norm makes every gradient NaN, and the update every weight:
                # skipped as a non-finite loss is (ESPnet does the same). Under AMP the scaler found the
                # same inf as it unscaled: its skipped step trains nothing either.
                finite = bool(torch.isfinite(grad_norm))  # the same on every rank (all-reduced)
            # an fp16 overflow: the scaler lowers its scale and the next step tries again; not
            # max_nan_steps' business (a new run's scale takes a few to settle), unless no scale helps
            overflowed = (not finite and use_amp and grad_norm is not None
                          and skip_overflow(scaler, step, overflows + 1, say, last_good))
            if empty:
                pass  # nothing usable on any rank: no update (AdamW would still decay weights)
            elif overflowed:
                overflows, non_finite = overflows + 1, non_finite + 1
            elif not finite:
                nan_run, non_finite = nan_run + 1, non_finite + 1
                say(f"step {step}: non-finite {'loss' if grad_norm is None else 'gradient'} ({nan_run} in a row); "
                    "batch skipped")
                if nan_run >= tc.max_nan_steps:
                    raise TrainingError(f"{nan_run} non-finite losses or gradients in a row at step {step}; "
                                        f"{last_good()}")
            else:
                nan_run, overflows, trained_step = 0, 0, step
                scaler.step(optimizer)
                scaler.update()
                loss_sum, n_utts = loss_sum + b_loss, n_utts + b_n
                phone_sum, n_phone = phone_sum + b_phone, n_phone + b_n_phone
                if writer is not None and b_n:
                    log_step(writer, step, b_loss, b_n, b_phone, b_n_phone, grad_norm, scheduler.get_last_lr()[0])
            with warnings.catch_warnings():  # a step that updated nothing still moves the schedule on
                warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
                step_lr = scheduler.get_last_lr()[0]
                scheduler.step()
            audio_seconds += float(batch.wave_lengths.sum()) / cfg.features.sample_rate
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / max(n_utts, 1):.3f}")
            if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                checkpoint(epoch, batch_in_epoch + 1)
            if stop_at_step is not None and step >= stop_at_step:
                checkpoint(epoch, batch_in_epoch + 1)
                return run_dir
        if bar is not None:
            bar.close()
        skip = 0
        totals = epoch_totals()
        carried = [0.0] * len(carried)
        if totals[3] == 0 and totals[6] and from_start:  # the same totals on every rank: all stop
            raise TrainingError(nothing_readable(tc.train_manifest, len(train_set), unreadable_files(train_set)))
        if silent is not None:
            warn_of_silence(tc.train_manifest, train_set, silent, d, device)
        if not totals[1]:  # no step updated the weights: a loss of 0 would read as a perfect fit
            why = why_untrained(totals)
            if trained_step is None:  # the same totals and steps on every rank: all stop
                raise TrainingError(f"{tc.train_manifest}: no step of epoch {epoch + 1} trained the model ({why}), "
                                    "nor any before it: the run stops with nothing learned")
            say(f"epoch {epoch + 1}: no step trained the model ({why}): train_loss is NaN")
        record = epoch_record(epoch + 1, step, step_lr, totals, phone_ctc=bool(cfg.phone_ctc_layer))
        ensure_finite()
        if d.is_main:  # a time budget may yet end the run at this epoch: kept for averaging as its last
            best = end_epoch(cfg, model, tokenizer, valid_set, device, writer, record, best,
                             epoch + 1 if tc.time_budget_minutes else epochs,
                             epoch_progress(epoch + 1, epochs, epoch_times, record["epoch_seconds"]))
            if valid_set is not None:
                from asr.plots import log_posteriorgram  # matplotlib only once there is a figure

                log_posteriorgram(writer, model, valid_set, tokenizer, step)  # at the step, as the epoch's scalars
        if tc.valid_manifest:  # every rank learns it (the main one validates), as every rank names last_good()
            finite = not d.is_main or math.isfinite(record["valid_loss"])
            invalid = None if distributed.all_true(finite, d, device) else (trained_step,)
        epoch_times.append(time.time() - t0)
        if tc.time_budget_minutes:
            planned = replan_to_budget(tc, epochs, epoch + 1, epoch_times, spent_before + time.time() - t_start,
                                       d, device, say)
            if planned != epochs:
                epochs = planned
                schedule.retarget(scheduler.last_epoch, starts[planned])
        checkpoint(epoch + 1, 0)
        epoch += 1
    if tc.average_last > 1 and d.is_main and not averaged:
        average_last_epochs(cfg, model, tokenizer, train_set, valid_set, device, best, epochs)
    if writer is not None:
        writer.close()
    return run_dir


def _finite(model: AcousticModel) -> bool:
    """Whether every weight and floating-point buffer is finite (one device sync)."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all())


def main(argv=None) -> int:
    """``python -m asr.train CONFIG [overrides] [--resume]``: the entry point torchrun runs."""
    p = argparse.ArgumentParser(prog="asr.train")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    try:
        train(load_config(args.config, args.overrides, resume=args.resume), resume=args.resume)
    except (OSError, *asr_error_types()) as e:  # the user errors `asr train` reports in one line; a
        # RuntimeError may be a crash of one rank (gloo, NCCL) and keeps its traceback
        distributed.report_error(describe(e))  # under `asr train --gpus N`, by the launcher, once for all ranks
        return 2
    finally:
        distributed.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
