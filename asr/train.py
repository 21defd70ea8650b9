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
from asr.config import Config
from asr.config_files import load_config, save_config
from asr.losses import forward_backward, log
from asr.model import AcousticModel
from asr.model_dir import save_model_dir
from asr.noise import NoiseError
from asr.provenance import record_start, provenance_files
from asr.schedule import WarmupCosine, replan_to_budget, warmup_warning
from asr.segmenter import Segmenter
from asr.selection import average_last_epochs, end_epoch
from asr.text import plural
from asr.train_checks import (TrainingError, check_trainable, check_trainable_lengths, none_read,
                              valid_in_train_note, valid_loss_note, warn_of_silence)
from asr.train_log import (TOTALS, EpochSums, epoch_progress, epoch_record, log_step, open_tensorboard, progress_bar,
                           why_untrained)
from asr.train_resume import (apply_new_settings, durations_id, epoch_starts, load_scaler, make_optimizer,
                              resume_point, trim_log)
from asr.train_setup import attach_phone_head, compute_cmvn, data_identity, describe_run, load_split, model_to_train
from asr.user_errors import asr_error_types, describe
from asr.weight_perturbation import WeightDrop, WeightNoise


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
    run = _Run(cfg, resume)
    while run.epoch < run.epochs:
        if not run.train_epoch(stop_at_step):
            return run.dir  # stopped at stop_at_step, checkpointed there
        run.end_epoch()
    run.finish()
    return run.dir


class _Run:
    """One training run: its data, model and optimizer (``__init__``, from the config or, resumed,
    from last/), its epochs (``train_epoch``: the steps; ``end_epoch``: validation, the log line,
    the checkpoint) and the counters its checkpoints keep."""

    def __init__(self, cfg: Config, resume: bool):
        self.cfg, tc = cfg, cfg.train
        check_trainable(cfg, resume)
        self.dir = Path(tc.output_dir)
        self.t_start = time.time()
        torch.manual_seed(tc.seed)
        torch.set_flush_denormal(True)  # denormals slowed CPU epochs 5x in long runs
        if tc.threads > 0:
            torch.set_num_threads(tc.threads)
        self.d, self.device = d, device = distributed.setup(tc.device)
        self.scaler = grad_scaler(device, tc.amp)
        self.use_amp = self.scaler.is_enabled()  # fp16 autocast goes with its loss scaling
        self.say = say = log if d.is_main else (lambda message: None)

        self.data = data_identity(cfg)  # kept in the train state: --resume refuses data that changed since
        try:  # an unusable augment.noise_dir is found as the model is built
            self.tokenizer, self.model, state, saved_cfg = model_to_train(cfg, resume, device, say, self.data)
        except NoiseError as e:
            raise TrainingError(str(e)) from None
        if d.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.dir / "config.yaml")
            record_start(self.dir, self.data, tc.init_from, resumed=state is not None)
        self._load_data(state)
        self.weight_noise = WeightNoise(self.model.parameters(), tc.weight_noise)
        self.weight_drop = WeightDrop(self.model.named_parameters(), tc.weight_drop)
        describe_run(cfg, self.model, self.tokenizer, device, d, self.weight_noise, self.weight_drop, say,
                     self.train_set.durations)
        self._plan(state)
        self.step, self.start_epoch, self.skip, self.nan_run = 0, 0, 0, 0
        self.saved_step = None  # the step of the last checkpoint
        self.overflows = 0  # fp16 gradient overflows since the last step that trained
        # the last step that updated the weights (None: none yet), and that step as of the last checkpoint
        self.trained_step = self.saved_trained = None  # (weights change only in such steps: last/ holds that step's)
        # (trained step,) whose weights validated to a non-finite loss, when the latest validation did; and
        # whether last/ holds those weights: no checkpoint to go back to then
        self.invalid, self.saved_invalid = None, False
        self.best = (math.inf,) * 3  # the best model's selection_key
        # a resumed epoch's sums so far (EpochSums.as_list's order): its log line then covers the whole epoch
        self.carried = [0.0] * TOTALS
        if state is not None:
            self._restore(state, saved_cfg)
        # epochs logged past last/ are trained and logged again, once
        self.averaged, self.best = (trim_log(self.dir, self.start_epoch, self.start_epoch >= self.epochs, self.best)
                                    if state and d.is_main else (False, self.best))
        warmup = round(self.schedule.warmup_steps)  # a resumed run's own, in this run's steps (resume_point)
        own = saved_cfg.train.warmup_steps if state else tc.warmup_steps  # a resumed run keeps its own
        if self.step < warmup and (warning := warmup_warning(warmup, self.starts[self.epochs], tc.lr, own,
                                                             resumed=bool(state))):
            say(warning)
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.model) if d.enabled else self.model
        self.writer = open_tensorboard(self.dir, self.step, resumed=bool(state)) if d.is_main else None
        self.model.train()
        self.epoch, self.epoch_times = self.start_epoch, []
        self.step_lr = self.scheduler.get_last_lr()[0]  # the rate of the latest step (logged: an epoch's last one's)

    def _load_data(self, state: dict | None) -> None:
        """The train and valid splits (the phone head attached first: it spells the train split's
        phones), and the global feature statistics of a new run that asks for them."""
        cfg, tc, model, d = self.cfg, self.cfg.train, self.model, self.d
        lexicon = attach_phone_head(model, cfg, state, self.device)
        self.train_set = load_split(tc.train_manifest, cfg, self.tokenizer, "train", quiet=not d.is_main,
                                    phone_lexicon=lexicon, bpe_dropout=tc.bpe_dropout)  # valid keeps BPE's own spelling
        check_trainable_lengths(self.train_set, model, cfg.augment.speed_factors, self.say)
        self.valid_set = None
        if tc.valid_manifest and d.is_main:  # read now: an unreadable file would stop validation at an epoch's end
            # cut as evaluate cuts (Transcriber.speech), so the best checkpoint is picked on what it scores;
            # one of max_seconds or more is kept whole: validate cuts it at pauses, as transcribe does
            edges = Segmenter.on_frames(cfg.features.sample_rate, model.frame_shift)
            longest = int(edges.options.max_seconds * cfg.features.sample_rate)
            self.valid_set = load_split(tc.valid_manifest, cfg, self.tokenizer, "valid", max_utts=tc.valid_max_utts,
                                        read_audio=True,
                                        span=lambda s: edges.speech_span(s) if len(s) < longest else (0, len(s)),
                                        as_evaluated=True)  # its digital silence: found by validate as it reads
            for note in (valid_in_train_note(self.train_set, self.valid_set), valid_loss_note(self.valid_set, model)):
                if note is not None:
                    self.say(note)
        if state is None and cfg.features.normalize == "global" and not tc.init_from:
            t0 = time.time()
            read = compute_cmvn(model, self.train_set, self.device, d)
            self.say(f"feature statistics from {plural(read, 'utterance')} in {time.time() - t0:.1f} s"
                     + (f"; {len(self.train_set) - read} utterance(s) with unreadable audio left out of training"
                        if read < len(self.train_set) else ""))

    def _sampler(self, c: Config, rank: int, world_size: int) -> BucketBatchSampler:
        return BucketBatchSampler(self.train_set.durations, c.train.batch_seconds, c.train.max_batch_size,
                                  shuffle=True, sortagrad=c.train.sortagrad, seed=c.train.seed,
                                  speed_factors=c.augment.speed_factors, rank=rank, world_size=world_size)

    def _plan(self, state: dict | None) -> None:
        """Batches, optimizer and learning-rate schedule."""
        tc = self.cfg.train
        self.sampler = self._sampler(self.cfg, self.d.rank, self.d.world_size)
        # each epoch packs its own number of batches (sortagrad's sorted first one fewer): the schedule's
        # length is their sum, and starts[e] the step epoch e starts at (the same on every rank)
        self.counts = self.sampler.batch_counts(max(tc.epochs, state["epoch"] if state is not None else 0))
        self.starts = epoch_starts(self.sampler, self.counts)
        self.durations = durations_id(self.train_set.durations)  # kept: whether a resumed run can rebuild them
        self.optimizer = make_optimizer(self.model, tc)
        self.epochs, self.spent_before = tc.epochs, 0.0  # epochs: as planned now (train.time_budget_minutes re-plans)
        if state is not None and tc.time_budget_minutes:
            self.epochs = min(state.get("planned_epochs", tc.epochs), tc.epochs)
            self.spent_before = state.get("seconds", 0.0)
        self.schedule = WarmupCosine(tc.warmup_steps, self.starts[self.epochs], tc.final_lr_fraction)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)

    def _restore(self, state: dict, saved_cfg: Config) -> None:
        """Where last/ stopped: optimizer, schedule, position and counters, in this run's steps."""
        tc = self.cfg.train
        self.optimizer.load_state_dict(state["optimizer"])
        # the saved run's settings on today's utterances (the same data: data_identity; resume_point
        # finds the saved run's among them, where another train.max_duration chose others)
        saved_sampler = self._sampler(saved_cfg, 0, state["world_size"])
        factor, self.step, self.skip = resume_point(state, self.scheduler, self.schedule, self.sampler, saved_sampler,
                                                    self.say, self.counts,
                                                    max_duration=(saved_cfg.train.max_duration, tc.max_duration))
        load_scaler(self.scaler, state["scaler"], self.say)
        self.start_epoch, self.nan_run, self.overflows = state["epoch"], state["nan_run"], state.get("overflows", 0)
        # saved before ties were broken: a tie keeps the best, as it did
        self.best = tuple(state.get("best_key") or (state["best_wer"], -math.inf, -math.inf))
        if tc.valid_manifest and self.best[0] < 0:  # ranked by epoch (no valid set): validation outranks it
            self.best = (math.inf,) * 3
        # steps are counted in this run's: ``factor`` (the saved plan's whole run's steps now over then) turns
        # the state's into them
        self.saved_step = step = self.step
        trained = state.get("trained_step", state["step"])  # a state saved before it was kept: as trained
        # the resumed step, if it trained; else rescaled, and never after it
        self.trained_step = self.saved_trained = (None if trained is None else step if trained == state["step"]
                                                  else min(step, round(trained * factor)))
        self.scheduler.last_epoch = step
        # the state's plan: another train.epochs now (or a state from before the plan summed its epochs' steps)
        if self.schedule.total_steps != self.starts[self.epochs]:
            self.schedule.retarget(step, self.starts[self.epochs])
        apply_new_settings(self.optimizer, self.scheduler, self.schedule, tc, saved_cfg.train, step, self.say)
        if self.skip:
            saved = state.get("epoch_totals", self.carried)
            self.carried = list(saved) + [0.0] * (TOTALS - len(saved))  # an older state keeps fewer sums

    def train_epoch(self, stop_at_step: int | None) -> bool:
        """The steps of epoch ``self.epoch`` (from ``self.skip``, resumed mid-epoch); False when
        ``stop_at_step`` ended the run, checkpointed, before the epoch did."""
        tc, d = self.cfg.train, self.d
        self.sampler.set_epoch(self.epoch, self.skip)
        self.train_set.set_epoch(self.epoch)
        self.loader = BatchLoader(self.train_set, self.sampler, pin_memory=self.device.type == "cuda")
        self.sums, self.t0 = EpochSums(), time.time()
        self.step_lr = self.scheduler.get_last_lr()[0]
        # utterances of digital silence or steady noise alone, as validation and evaluate judge them:
        # looked for in the first epoch this process runs
        self.silent = silent = [] if self.epoch == self.start_epoch else None
        no_speech = Segmenter(self.cfg.features.sample_rate).is_silent  # evaluate's rule
        bar = progress_bar(self.sampler.steps(self.counts[self.epoch]) - self.skip,
                           f"epoch {self.epoch + 1}/{self.epochs}", tc.progress and d.is_main)
        self.from_start = self.skip == 0  # a resumed epoch may have nothing left to read
        for batch_in_epoch, batch in enumerate(self.loader, start=self.skip):
            if not distributed.all_true(batch is not None, d, self.device):
                if bar is not None:  # a batch of unreadable audio on some rank: every rank skips this step
                    bar.update(1)
                continue
            if silent is not None:  # each wave less its zero padding
                silent += [i for i, wave, n in zip(batch.indices, batch.waveforms, batch.wave_lengths.tolist())
                           if no_speech(wave[:n].cpu().numpy())]
            self.train_step(batch)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{self.sums.loss / max(self.sums.utterances, 1):.3f}")
            if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                self.checkpoint(self.epoch, batch_in_epoch + 1)
            if stop_at_step is not None and self.step >= stop_at_step:
                self.checkpoint(self.epoch, batch_in_epoch + 1)
                return False
        if bar is not None:
            bar.close()
        self.skip = 0
        return True

    def train_step(self, batch) -> None:
        """One step: forward, CTC, backward and, if the loss and gradient are finite, the update.
        A non-finite one is skipped (an fp16 overflow retried at a lower loss scale) and counted."""
        tc, d, device, sums = self.cfg.train, self.d, self.device, self.sums
        torch.manual_seed((tc.seed * 1_000_003 + self.step * d.world_size + d.rank) % 2**64)  # dropout, SpecAugment
        batch = batch.to(device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        # the gradient at perturbed weights; the update to the clean ones
        # one mask on all ranks; not dropout's stream (% 2**64: a seed such as 20240501 overflows torch's)
        drop_seed = ((tc.seed * 1_000_003 + self.step) * 1_000_003 + 17) % 2**64
        with self.weight_noise.applied(), self.weight_drop.applied(seed=drop_seed):
            b_loss, b_n, b_short, finite, b_phone, b_n_phone = forward_backward(
                self.ddp, batch, self.tokenizer.blank_id, self.scaler, self.use_amp, device,
                inter=(self.cfg.inter_ctc_layer, tc.inter_ctc_weight), phone_weight=tc.phone_ctc_weight,
                confidence=tc.confidence_penalty)
        finite = distributed.all_true(finite, d, device)
        sums.too_short += b_short
        self.step += 1
        empty, grad_norm = distributed.all_true(b_n == 0, d, device), None
        if finite and not empty:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            # Clipping by an infinite norm makes every gradient NaN, and the update every weight:
            # skipped as a non-finite loss is (ESPnet does the same). Under AMP the scaler found the
            # same inf as it unscaled: its skipped step trains nothing either.
            finite = bool(torch.isfinite(grad_norm))  # the same on every rank (all-reduced)
        # an fp16 overflow: the scaler lowers its scale and the next step tries again; not
        # max_nan_steps' business (a new run's scale takes a few to settle), unless no scale helps
        overflowed = (not finite and self.use_amp and grad_norm is not None
                      and skip_overflow(self.scaler, self.step, self.overflows + 1, self.say, self.last_good))
        if empty:
            pass  # nothing usable on any rank: no update (AdamW would still decay weights)
        elif overflowed:
            self.overflows, sums.non_finite = self.overflows + 1, sums.non_finite + 1
        elif not finite:
            self.nan_run, sums.non_finite = self.nan_run + 1, sums.non_finite + 1
            self.say(f"step {self.step}: non-finite {'loss' if grad_norm is None else 'gradient'} "
                     f"({self.nan_run} in a row); batch skipped")
            if self.nan_run >= tc.max_nan_steps:
                raise TrainingError(f"{self.nan_run} non-finite losses or gradients in a row at step {self.step}; "
                                    f"{self.last_good()}")
        else:
            self.nan_run, self.overflows, self.trained_step = 0, 0, self.step
            self.scaler.step(self.optimizer)
            self.scaler.update()
            sums.loss, sums.utterances = sums.loss + b_loss, sums.utterances + b_n
            sums.phone_loss, sums.phone_utterances = sums.phone_loss + b_phone, sums.phone_utterances + b_n_phone
            if self.writer is not None and b_n:
                log_step(self.writer, self.step, b_loss, b_n, b_phone, b_n_phone, grad_norm,
                         self.scheduler.get_last_lr()[0])
        with warnings.catch_warnings():  # a step that updated nothing still moves the schedule on
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
            self.step_lr = self.scheduler.get_last_lr()[0]
            self.scheduler.step()
        sums.audio_seconds += float(batch.wave_lengths.sum()) / self.cfg.features.sample_rate

    def end_epoch(self) -> None:
        """After an epoch's steps: its log line, validation and the best model (main rank), the time
        budget's re-plan, and the checkpoint."""
        cfg, tc, d, device = self.cfg, self.cfg.train, self.d, self.device
        totals = self.epoch_totals()
        self.carried = [0.0] * TOTALS
        if totals[3] == 0 and totals[6] and self.from_start:  # the same totals on every rank: all stop
            raise TrainingError(none_read(self.train_set))
        if self.silent is not None:
            warn_of_silence(tc.train_manifest, self.train_set, self.silent, d, device)
        if not totals[1]:  # no step updated the weights: a loss of 0 would read as a perfect fit
            why = why_untrained(totals)
            if self.trained_step is None:  # the same totals and steps on every rank: all stop
                raise TrainingError(f"{tc.train_manifest}: no step of epoch {self.epoch + 1} trained the model "
                                    f"({why}), nor any before it: the run stops with nothing learned")
            self.say(f"epoch {self.epoch + 1}: no step trained the model ({why}): train_loss is NaN")
        record = epoch_record(self.epoch + 1, self.step, self.step_lr, totals, phone_ctc=bool(cfg.phone_ctc_layer))
        self.ensure_finite()
        if d.is_main:  # a time budget may yet end the run at this epoch: kept for averaging as its last
            self.best = end_epoch(cfg, self.model, self.tokenizer, self.valid_set, device, self.writer, record,
                                  self.best, self.epoch + 1 if tc.time_budget_minutes else self.epochs,
                                  epoch_progress(self.epoch + 1, self.epochs, self.epoch_times,
                                                 record["epoch_seconds"]))
            if self.valid_set is not None:
                from asr.plots import log_posteriorgram  # matplotlib only once there is a figure

                log_posteriorgram(self.writer, self.model, self.valid_set, self.tokenizer, self.step)  # at the
                # step, as the epoch's scalars
        if tc.valid_manifest:  # every rank learns it (the main one validates), as every rank names last_good()
            finite = not d.is_main or math.isfinite(record["valid_loss"])
            self.invalid = None if distributed.all_true(finite, d, device) else (self.trained_step,)
        self.epoch_times.append(time.time() - self.t0)
        if tc.time_budget_minutes:
            planned = replan_to_budget(tc, self.epochs, self.epoch + 1, self.epoch_times,
                                       self.spent_before + time.time() - self.t_start, d, device, self.say)
            if planned != self.epochs:
                self.epochs = planned
                self.schedule.retarget(self.scheduler.last_epoch, self.starts[planned])
        self.checkpoint(self.epoch + 1, 0)
        self.epoch += 1

    def finish(self) -> None:
        if self.cfg.train.average_last > 1 and self.d.is_main and not self.averaged:
            average_last_epochs(self.cfg, self.model, self.tokenizer, self.train_set, self.valid_set, self.device,
                                self.best, self.epochs)
        if self.writer is not None:
            self.writer.close()

    def epoch_totals(self) -> list[float]:
        """This epoch's sums so far over all ranks (every rank calls it), carried ones included."""
        local = torch.tensor(self.sums.as_list(self.loader.unreadable, 0.0), dtype=torch.float64, device=self.device)
        totals = distributed.all_sum(local, self.d).tolist()
        totals[7] = time.time() - self.t0  # wall time: the same on every rank, not summed
        return [a + b for a, b in zip(totals, self.carried)]

    def last_good(self) -> str:
        """The checkpoint to go back to: last/, if a step that trained came before it."""
        last, saved_step, saved_trained = self.dir / "last", self.saved_step, self.saved_trained
        if saved_step is None:
            return "no checkpoint was saved before it"
        if saved_trained is None:
            return f"{last} (step {saved_step}) holds the initial weights: no step before it trained"
        if self.saved_invalid:
            return (f"no checkpoint has a finite valid loss: {last} (saved at step {saved_step}) holds the weights "
                    f"of step {saved_trained}, whose valid_loss was not finite")
        if saved_trained == saved_step:
            return f"the last good checkpoint is {last} (step {saved_step})"
        return (f"the last good checkpoint is {last} (saved at step {saved_step} with the weights of step "
                f"{saved_trained}: no step between them trained)")

    def ensure_finite(self) -> None:
        """Stop before non-finite weights are validated or saved: no later step brings them back."""
        if not _finite(self.model):  # the weights are the same on every rank
            raise TrainingError(f"step {self.step}: the weights became non-finite (NaN or inf) at lr "
                                f"{self.step_lr:.3g}; the run stops: {self.last_good()} (lower train.lr "
                                "or train.grad_clip)")

    def checkpoint(self, epoch: int, batch_in_epoch: int) -> None:
        """last/: the model and the train state that resumes the run at ``batch_in_epoch`` of ``epoch``."""
        self.ensure_finite()
        sums = self.epoch_totals() if batch_in_epoch else [0.0] * TOTALS
        if self.d.is_main:
            train_state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                           "scaler": self.scaler.state_dict(), "step": self.step, "epoch": epoch,
                           "world_size": self.d.world_size, "global_batch_in_epoch": batch_in_epoch * self.d.world_size,
                           "best_wer": self.best[0], "best_key": list(self.best), "nan_run": self.nan_run,
                           "overflows": self.overflows, "planned_epochs": self.epochs, "batch_counts": self.counts,
                           "durations_id": self.durations, "epoch_totals": sums,
                           "seconds": self.spent_before + time.time() - self.t_start, "data": self.data,
                           "trained_step": self.trained_step}
            if self.model.phone_head is not None:
                train_state["phone_head"] = self.model.phone_head.state_dict()
            # in the directory before it appears: a kill never leaves a last/ that --resume cannot read
            save_model_dir(self.dir / "last", self.cfg, self.model, self.tokenizer,
                           extra_files={"train_state.pt": lambda path: torch.save(train_state, path),
                                        **provenance_files(self.dir)})
        self.saved_step, self.saved_trained = self.step, self.trained_step
        self.saved_invalid = self.invalid == (self.trained_step,)
        distributed.barrier(self.d)


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
