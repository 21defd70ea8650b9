"""The training loop: CTC loss, AdamW with warmup and cosine decay, length-bucketed batches,
mixed precision on GPU, per-epoch validation, atomic checkpoints and exact resume.

A run directory holds::

    last/        model directory + train_state.pt (optimizer, schedule, position, RNG)
    best/        model directory with the best validation WER so far
    log.jsonl    one JSON object per epoch
    tb/          TensorBoard logs

Every step reseeds torch from (seed, step), and each epoch's batches are a function of
(seed, epoch), so a run resumed from ``last/`` takes exactly the steps the killed run would
have taken.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from asr.config import Config, save_config
from asr.data import (BucketBatchSampler, SpeechDataset, collate, frames_needed, read_manifest,
                      total_hours)
from asr.decoding import GreedyDecoder
from asr.features import StatsAccumulator
from asr.metrics import char_errors, word_errors
from asr.model import AcousticModel
from asr.model_dir import load_model_dir, save_model_dir
from asr.text import CharTokenizer


class TrainingError(RuntimeError):
    pass


@dataclass
class EpochStats:
    loss_sum: float = 0.0
    utterances: int = 0
    audio_seconds: float = 0.0
    skipped_too_short: int = 0
    seconds: float = 0.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_train_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("train.device=cuda, but no CUDA device is available")
    return torch.device(name)


def lr_lambda(cfg, total_steps: int):
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        floor = cfg.final_lr_fraction
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def ctc_loss(log_probs, out_lengths, batch, blank: int):
    """Per-utterance CTC losses; utterances with too few frames for their label are masked."""
    needed = torch.tensor([frames_needed(batch.targets[i, : batch.target_lengths[i]])
                           for i in range(len(batch.indices))], device=out_lengths.device)
    valid = out_lengths >= needed
    losses = F.ctc_loss(log_probs.transpose(0, 1), batch.targets, out_lengths, batch.target_lengths,
                        blank=blank, reduction="none", zero_infinity=True)
    return losses, valid


def compute_cmvn(model: AcousticModel, dataset: SpeechDataset, device, batch_size=16) -> None:
    """Global mean/std of the (unaugmented) training features; fills the audio cache too."""
    acc = StatsAccumulator(model.features_cfg.dim)
    extractor = model.frontend.extractor
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[(i, 1.0)] for i in range(start, min(len(dataset), start + batch_size))])
        with torch.no_grad():
            feats, lengths = extractor(batch.waveforms.to(device), batch.wave_lengths.to(device))
        acc.add(feats, lengths)
    mean, std = acc.result()
    model.frontend.normalizer.set_stats(mean.to(device), std.to(device))


@torch.no_grad()
def validate(model, dataset, cfg, device, tokenizer) -> dict:
    model.eval()
    sampler = BucketBatchSampler(dataset.durations, cfg.train.batch_seconds, cfg.train.max_batch_size,
                                 shuffle=False)
    decoder = GreedyDecoder(tokenizer)
    loss_sum, n, refs, hyps = 0.0, 0, [], []
    for items in sampler:
        batch = collate([dataset[i] for i in items]).to(device)
        log_probs, out_lengths = model(batch.waveforms, batch.wave_lengths)
        losses, valid = ctc_loss(log_probs, out_lengths, batch, tokenizer.blank_id)
        loss_sum += float(losses[valid].sum())
        n += int(valid.sum())
        for hyp, i in zip(decoder.decode(log_probs.cpu(), out_lengths.cpu()), batch.indices):
            hyps.append(hyp.text)
            refs.append(tokenizer.decode(dataset.targets[i].tolist()))
    model.train()
    return {"valid_loss": loss_sum / max(n, 1), "valid_wer": word_errors(refs, hyps).rate,
            "valid_cer": char_errors(refs, hyps).rate}


def load_split(path: str, cfg: Config, tokenizer, name: str) -> SpeechDataset:
    utts = read_manifest(path)
    too_long = [u for u in utts if u.duration > cfg.train.max_duration]
    dataset = SpeechDataset([u for u in utts if u.duration <= cfg.train.max_duration], tokenizer,
                            cfg.features.sample_rate)
    for utt, reason in dataset.skipped:
        log(f"skipped {name} utterance {utt.id or utt.audio_filepath}: {reason}")
    if too_long:
        log(f"skipped {len(too_long)} {name} utterance(s) longer than {cfg.train.max_duration} s")
    if len(dataset) == 0:
        raise TrainingError(f"{path}: no usable utterances")
    log(f"{name}: {len(dataset)} utterances, {total_hours(dataset.utterances):.2f} h")
    return dataset


def train(cfg: Config, resume: bool = False, stop_at_step: int | None = None) -> Path:
    """Train per ``cfg``; returns the run directory. ``stop_at_step`` ends the run right after
    that step's checkpoint, as if the process had been killed there (for tests)."""
    tc = cfg.train
    run_dir = Path(tc.output_dir)
    torch.manual_seed(tc.seed)
    torch.set_flush_denormal(True)  # denormals slowed CPU epochs 5x in long runs
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    device = resolve_train_device(tc.device)
    use_amp = tc.amp and device.type == "cuda"

    state = None
    if resume and (run_dir / "last" / "train_state.pt").is_file():
        loaded = load_model_dir(run_dir / "last", device)
        tokenizer, model = loaded.tokenizer, loaded.model
        model.frontend.augment.cfg = cfg.augment
        state = torch.load(run_dir / "last" / "train_state.pt", weights_only=True)
        log(f"resuming {run_dir} at epoch {state['epoch'] + 1}, step {state['step']}")
    elif resume:
        log(f"nothing to resume in {run_dir}: starting a new run")
    if state is None:
        if (run_dir / "last").exists():
            raise TrainingError(f"{run_dir} already holds a run: use --resume, or another train.output_dir")
        texts = [u.text for u in read_manifest(tc.train_manifest)]
        tokenizer = CharTokenizer.build(texts)
        model = AcousticModel(cfg.features, cfg.model, len(tokenizer), cfg.augment).to(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")

    train_set = load_split(tc.train_manifest, cfg, tokenizer, "train")
    valid_set = load_split(tc.valid_manifest, cfg, tokenizer, "valid") if tc.valid_manifest else None
    if valid_set is not None and tc.valid_max_utts:
        valid_set.utterances = valid_set.utterances[: tc.valid_max_utts]
        valid_set.targets = valid_set.targets[: tc.valid_max_utts]
    if state is None and cfg.features.normalize == "global":
        t0 = time.time()
        compute_cmvn(model, train_set, device)
        log(f"feature statistics from {len(train_set)} utterances in {time.time() - t0:.1f} s")
    log(f"model: {cfg.model.num_layers}x{cfg.model.hidden_size} {cfg.model.cell} "
        f"{'bi' if cfg.model.bidirectional else 'uni'}directional, {model.num_parameters():,} parameters, "
        f"{len(tokenizer)} tokens, device {device}")

    sampler = BucketBatchSampler(train_set.durations, tc.batch_seconds, tc.max_batch_size, shuffle=True,
                                 sortagrad=tc.sortagrad, seed=tc.seed, speed_factors=cfg.augment.speed_factors)
    steps_per_epoch = len(sampler.batches(0))
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tc, steps_per_epoch * tc.epochs))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, start_epoch, skip, best_wer, nan_run = 0, 0, 0, float("inf"), 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, start_epoch, skip = state["step"], state["epoch"], state["batch_in_epoch"]
        best_wer, nan_run = state["best_wer"], state["nan_run"]

    from torch.utils.tensorboard import SummaryWriter  # slow import; only when training
    writer = SummaryWriter(str(run_dir / "tb"))

    def checkpoint(epoch: int, batch_in_epoch: int) -> None:
        train_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "scaler": scaler.state_dict(), "step": step, "epoch": epoch,
                       "batch_in_epoch": batch_in_epoch, "best_wer": best_wer, "nan_run": nan_run}
        tmp = run_dir / ".train_state.pt.tmp"
        torch.save(train_state, tmp)
        save_model_dir(run_dir / "last", cfg, model, tokenizer)
        tmp.replace(run_dir / "last" / "train_state.pt")

    model.train()
    for epoch in range(start_epoch, tc.epochs):
        sampler.set_epoch(epoch, skip)
        stats, t0 = EpochStats(), time.time()
        bar = _progress(len(sampler), f"epoch {epoch + 1}/{tc.epochs}", tc.progress)
        for batch_in_epoch, items in enumerate(sampler, start=skip):
            torch.manual_seed(tc.seed * 1_000_003 + step)  # dropout + SpecAugment, reproducibly
            batch = collate([train_set[i] for i in items]).to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                log_probs, out_lengths = model(batch.waveforms, batch.wave_lengths)
            losses, valid = ctc_loss(log_probs, out_lengths, batch, tokenizer.blank_id)
            stats.skipped_too_short += int((~valid).sum())
            step += 1
            if valid.any():
                loss = losses[valid].mean()
                if not torch.isfinite(loss):
                    nan_run += 1
                    log(f"step {step}: non-finite loss ({nan_run} in a row); batch skipped")
                    if nan_run >= tc.max_nan_steps:
                        raise TrainingError(f"{nan_run} non-finite losses in a row at step {step}; "
                                            f"the last good checkpoint is {run_dir / 'last'}")
                    optimizer.zero_grad(set_to_none=True)
                else:
                    nan_run = 0
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    stats.loss_sum += float(losses[valid].detach().sum())
                    stats.utterances += int(valid.sum())
                    writer.add_scalar("train/loss", loss.item(), step)
                    writer.add_scalar("train/grad_norm", float(grad_norm), step)
                    writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            scheduler.step()
            stats.audio_seconds += float(batch.wave_lengths.sum()) / cfg.features.sample_rate
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{stats.loss_sum / max(stats.utterances, 1):.3f}")
            if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                checkpoint(epoch, batch_in_epoch + 1)
            if stop_at_step is not None and step >= stop_at_step:
                checkpoint(epoch, batch_in_epoch + 1)
                return run_dir
        if bar is not None:
            bar.close()
        skip = 0
        stats.seconds = time.time() - t0
        record = {"epoch": epoch + 1, "step": step, "train_loss": stats.loss_sum / max(stats.utterances, 1),
                  "lr": scheduler.get_last_lr()[0], "epoch_seconds": round(stats.seconds, 1),
                  "audio_seconds_per_second": round(stats.audio_seconds / max(stats.seconds, 1e-9), 1),
                  "skipped_too_short": stats.skipped_too_short}
        if valid_set is not None:
            record.update(validate(model, valid_set, cfg, device, tokenizer))
        for key, value in record.items():
            if key not in ("epoch", "step"):
                writer.add_scalar(f"epoch/{key}", value, epoch + 1)
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        current = record.get("valid_wer", -record["epoch"])  # no valid set: latest is best
        if current < best_wer:
            best_wer = current
            save_model_dir(run_dir / "best", cfg, model, tokenizer)
        checkpoint(epoch + 1, 0)
    writer.close()
    return run_dir


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
