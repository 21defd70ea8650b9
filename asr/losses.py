"""What training minimizes, one batch at a time: CTC on the final layer, optionally mixed with
intermediate CTC (the same head on a lower layer) and auxiliary phone CTC (a head of its own on a
lower layer), with the gradient taken under mixed precision and a batch that does not fit in GPU
memory split in halves."""

from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F

from asr.data import Batch


def log(message: str) -> None:
    """Training's progress and warnings, on stderr (train.py logs through this too)."""
    print(message, file=sys.stderr, flush=True)


def frames_needed_batch(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """``asr.data.frames_needed`` of each padded row of ``targets`` at once: on a GPU, one step's
    check without a host sync per utterance."""
    lengths = target_lengths.to(targets.device)
    inside = torch.arange(1, max(1, targets.shape[1]), device=targets.device) < lengths[:, None]  # (j-1, j) in it
    repeats = ((targets[:, 1:] == targets[:, :-1]) & inside).sum(1)
    return lengths + repeats


def ctc_loss(log_probs, out_lengths, batch, blank: int, targets=None, target_lengths=None):
    """Per-utterance CTC losses; utterances with too few frames for their label are masked.
    The labels are the batch's characters unless ``targets``, ``target_lengths`` are given."""
    if targets is None:
        targets, target_lengths = batch.targets, batch.target_lengths
    valid = out_lengths >= frames_needed_batch(targets, target_lengths).to(out_lengths.device)
    losses = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths,
                        blank=blank, reduction="none", zero_infinity=True)
    return losses, valid


def frame_entropy(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, V) log-probs -> (B,) the entropy of each frame's distribution, summed over each
    utterance's first ``lengths`` frames (padding left out)."""
    entropy = -(log_probs.exp() * log_probs).sum(-1)  # (B, T)
    inside = torch.arange(log_probs.shape[1], device=log_probs.device) < lengths.to(log_probs.device)[:, None]
    return (entropy * inside).sum(1)


def forward_backward(model, batch, blank, scaler, use_amp, device, divisor=None, inter=(0, 0.0),
                     phone_weight=0.0, confidence=0.0):
    """Loss and gradients for one batch: (loss sum, utterances used, too short, finite, phone
    loss sum, utterances in it).

    The loss is summed over usable utterances and divided by the batch size. With ``inter`` =
    (layer, weight) the gradient is of (1 - weight) * CTC + weight * intermediate CTC; with
    ``phone_weight``, that much of it comes from the phone head's CTC against the batch's phone
    targets instead (an utterance without phones keeps that share on the final CTC); with
    ``confidence``, that times the final outputs' ``frame_entropy`` is taken off. The
    returned loss is the final layer's CTC alone, comparable across runs. Every rank runs
    backward, even on a batch with nothing usable, so that the gradient all-reduce lines up.
    A batch that runs out of GPU memory is split in halves whose gradients accumulate (under
    DDP the first half skips the all-reduce); a single utterance that still does not fit is
    skipped with a warning. Either way, what the failed pass's backward had added to the
    gradients before it ran out is undone first.
    """
    divisor = divisor or len(batch.indices)
    layer, weight = inter
    before = None
    try:
        before = _gradients(model)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            outputs = model(batch.waveforms, batch.wave_lengths, inter_layer=layer, phones=phone_weight > 0)
        log_probs, out_lengths = outputs[:2]
        losses, valid = ctc_loss(log_probs, out_lengths, batch, blank)
        objective, phone_sum, n_phone = losses, 0.0, 0
        if layer:
            inter_losses, _ = ctc_loss(outputs[2], out_lengths, batch, blank)
            objective = (1 - weight) * losses + weight * inter_losses
        if phone_weight > 0 and batch.phone_lengths is None:  # no phones in this batch: a zero
            objective = objective + 0.0 * outputs[3].sum()  # gradient keeps DDP's all-reduce in line
        elif phone_weight > 0:
            phone_losses, phone_ok = ctc_loss(outputs[3], out_lengths, batch, 0,  # phone id 0: the blank
                                              batch.phone_targets, batch.phone_lengths)
            has_phones = phone_ok & (batch.phone_lengths > 0)
            counted = has_phones & valid
            phone_sum, n_phone = float(phone_losses[counted].detach().sum()), int(counted.sum())
            objective = (1 - phone_weight) * objective + phone_weight * torch.where(has_phones, phone_losses,
                                                                                    objective)
        if confidence:
            objective = objective - confidence * frame_entropy(log_probs, out_lengths)
        loss = (objective * valid).sum() / divisor
        scaler.scale(loss).backward()
        n_valid = int(valid.sum())
        return (float(losses[valid].detach().sum()), n_valid, len(batch.indices) - n_valid, bool(torch.isfinite(loss)),
                phone_sum, n_phone)
    except torch.OutOfMemoryError:
        if before is not None:  # a backward that failed part way has added to some gradients already
            _restore(before)
        del before
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if len(batch.indices) == 1:
            log(f"skipped utterance {batch.indices[0]}: does not fit in GPU memory alone")
            return 0.0, 0, 0, True, 0.0, 0
        log(f"out of GPU memory on a batch of {len(batch.indices)}: splitting it in two")
        half = len(batch.indices) // 2
        no_sync = getattr(model, "no_sync", contextlib.nullcontext)
        with no_sync():
            a = forward_backward(model, _slice(batch, 0, half), blank, scaler, use_amp, device, divisor, inter,
                                 phone_weight, confidence)
        b = forward_backward(model, _slice(batch, half, len(batch.indices)), blank, scaler, use_amp, device,
                             divisor, inter, phone_weight, confidence)
        return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] and b[3], a[4] + b[4], a[5] + b[5]


def _gradients(model) -> list:
    """Each parameter with a copy of its gradient as it stands, in host memory: a batch split after
    running out of GPU memory has no room for a second set there (None: none yet; after zero_grad,
    as at the start of a step, nothing is copied)."""
    return [(p, None if p.grad is None else p.grad.detach().to("cpu", copy=True)) for p in model.parameters()]


def _restore(saved: list) -> None:
    for p, grad in saved:
        if grad is None:
            p.grad = None
        else:
            p.grad.copy_(grad)


def _slice(batch, start, end):
    wl, tl = batch.wave_lengths[start:end], batch.target_lengths[start:end]
    part = Batch(batch.waveforms[start:end, : int(wl.max())], wl, batch.targets[start:end, : max(1, int(tl.max()))],
                 tl, batch.indices[start:end], has_labels=batch.has_labels[start:end])
    if batch.phone_lengths is not None:
        part.phone_lengths = batch.phone_lengths[start:end]
        part.phone_targets = batch.phone_targets[start:end, : max(1, int(part.phone_lengths.max()))]
    return part
