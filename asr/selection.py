"""Model selection on the valid set: each epoch's greedy WER/CER and CTC loss, logged, and the
model kept as best/ when it ranks first so far; the average of the last epochs' weights
(``train.average_last``; batch norm's statistics measured again for it), kept as best/ only if it
validates better, or always with ``train.keep_average``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.nn.utils.rnn import pad_sequence

from asr.batching import BatchLoader, BucketBatchSampler, padded_batches
from asr.config import Config
from asr.data import collate
from asr.decoding import GreedyDecoder
from asr.evaluate import speech_pieces
from asr.losses import ctc_loss, log
from asr.metrics import char_errors, selection_key, word_errors
from asr.model import AcousticModel, MaskedBatchNorm
from asr.model_dir import save_model_dir
from asr.provenance import provenance_files
from asr.segmenter import Segmenter, SegmenterOptions
from asr.text import normalize_text


@torch.no_grad()
def validate(model, dataset, cfg, device, tokenizer) -> dict:
    """Greedy WER and CER scored as asr/evaluate.py scores them (the normalized transcript against
    the normalized hypothesis: a phone model's references are not its decoded labels, which would
    turn words into homophones), and the mean CTC loss over the utterances that have labels, are
    long enough for them (asr.losses.ctc_loss) and shorter than the segmenter's ``max_seconds``;
    NaN when no utterance could be scored.

    Decoded as evaluate decodes: an utterance that is digital silence as read (the segmenter's
    ``is_silent``, asked here of each batch read, so that training never reads the set for it
    beforehand) gets the empty hypothesis, and
    one of ``max_seconds`` or more (``long_utterances``; asr.train keeps it uncut for that) is
    decoded in the pieces evaluate cuts it into at pauses (``asr.evaluate.speech_pieces``), their
    texts joined. It is never run whole, so it has no loss: the pieces have no transcripts of
    their own, and one long recording's loss (its CTC table grows with its length times its
    transcript's) would swamp the mean and could exhaust memory."""
    model.eval()
    long = long_utterances(dataset)
    scored = [i for i in range(len(dataset)) if i not in long]
    sampler = BucketBatchSampler([dataset.durations[i] for i in scored], cfg.train.batch_seconds,
                                 cfg.train.max_batch_size, shuffle=False)
    decoder = GreedyDecoder(tokenizer)
    is_silent = Segmenter(cfg.features.sample_rate).is_silent  # evaluate's rule (it cuts nothing here)
    loss_sum, n, refs, hyps = 0.0, 0, [], []
    for items in sampler:
        examples = [dataset[(scored[j], speed)] for j, speed in items]
        silent = {e.index for e in examples if is_silent(e.waveform.numpy())}  # decoded as nothing
        batch = collate(examples).to(device)
        log_probs, out_lengths = model(batch.waveforms, batch.wave_lengths)
        losses, valid = ctc_loss(log_probs, out_lengths, batch, tokenizer.blank_id)
        valid &= batch.has_labels  # one with no labels (an unspellable transcript) has no loss to take
        loss_sum += float(losses[valid].sum())
        n += int(valid.sum())
        for hyp, i in zip(decoder.decode(log_probs.cpu(), out_lengths.cpu()), batch.indices):
            hyps.append("" if i in silent else normalize_text(hyp.text))
            refs.append(dataset.texts[i])  # normalized as it was read
    if long:
        segmenter = Segmenter.on_frames(cfg.features.sample_rate, model.frame_shift)  # as a Transcriber's
        for i in sorted(long):
            pieces = speech_pieces(segmenter, dataset.waveform(i))
            hyps.append(_decode_pieces(model, decoder, pieces, device, cfg.train.batch_seconds * dataset.sample_rate))
            refs.append(dataset.texts[i])
    model.train()
    if not n:
        log(f"warning: {dataset.source or 'valid'}: none of its {len(dataset)} utterances could be scored (each too "
            f"short for its transcript at the model's frame rate, one it cannot spell, or one of "
            f"{SegmenterOptions().max_seconds:g} s or more): valid_loss is NaN; best/ is picked on WER and CER alone")
    return {"valid_loss": loss_sum / n if n else math.nan,  # NaN rates: no reference scored (0/0, not 0%)
            "valid_wer": word_errors(refs, hyps).rate if refs else math.nan,
            "valid_cer": char_errors(refs, hyps).rate if refs else math.nan}


def long_utterances(dataset) -> set[int]:
    """The valid utterances of the segmenter's ``max_seconds`` or more, as read (asr.train keeps
    them uncut): decoded in pieces, and left out of the loss. Their files' durations say which
    may be; only those are measured (a read, when the audio is not cached), once per dataset:
    every epoch's validation asks again."""
    if dataset.long is None:
        rate = dataset.sample_rate
        longest = int(SegmenterOptions().max_seconds * rate)  # what transcribe cuts
        dataset.long = {i for i, seconds in enumerate(dataset.durations)
                        if seconds * rate >= longest - rate and dataset.waveform(i).numel() >= longest}
    return dataset.long


def _decode_pieces(model, decoder, pieces: list[torch.Tensor], device, batch_samples: float) -> str:
    """One utterance's pieces, run in batches of at most ``batch_samples`` of padded audio (an
    hour's would not fit one), their greedy texts joined (none: silence)."""
    texts = []
    for group in padded_batches(pieces, lambda piece: [piece.numel()], batch_samples):
        lengths = torch.tensor([p.numel() for p in group])
        log_probs, out_lengths = model(pad_sequence(group, batch_first=True).to(device), lengths.to(device))
        texts += [normalize_text(h.text) for h in decoder.decode(log_probs.cpu(), out_lengths.cpu())]
    return " ".join(t for t in texts if t)  # as merge_results joins a cut file's


def end_epoch(cfg: Config, model, tokenizer, valid_set, device, writer, record: dict, best: tuple,
              epochs: int, progress: str = "") -> tuple:
    """The main process after an epoch: validate, log (``record``, in log.jsonl and TensorBoard's
    ``writer``; on stderr after ``progress``, asr.train_log.epoch_progress), keep the best model (and,
    for averaging, the last epochs' weights); returns the best model's selection_key so far."""
    tc, run_dir, epoch = cfg.train, Path(cfg.train.output_dir), record["epoch"]
    if valid_set is not None:
        record.update(validate(model, valid_set, cfg, device, tokenizer))
    for key, value in record.items():  # at the global step, as train/*: a resumed run's purge_step covers them
        if key != "step":
            writer.add_scalar(f"epoch/{key}", value, record["step"])
    _log_record(run_dir, record, progress)
    current = selection_key(record)
    if current is not None and current < best:
        best = current
        save_model_dir(run_dir / "best", cfg, model, tokenizer, extra_files=provenance_files(run_dir))
    if tc.average_last > 1 and epoch > epochs - tc.average_last:
        (run_dir / "epochs").mkdir(exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(run_dir / "epochs" / f"epoch-{epoch:03d}.safetensors"))
        # out of the window of any end still possible (a time budget saves every epoch: each may be the last)
        (run_dir / "epochs" / f"epoch-{epoch - tc.average_last:03d}.safetensors").unlink(missing_ok=True)
    return best


def average_last_epochs(cfg: Config, model: AcousticModel, tokenizer, train_set, valid_set, device, best: tuple,
                        epochs: int) -> None:
    """Average the weights saved at the end of the last ``train.average_last`` of ``epochs`` into
    RUN/avg/ (batch norm's statistics measured again on ``train_set``), and make it best/ if it ranks
    above ``best`` (selection_key) on valid, or always with ``train.keep_average`` unless its valid
    loss is not finite (loads into ``model``: training is over)."""
    run_dir, tc = Path(cfg.train.output_dir), cfg.train
    paths = [run_dir / "epochs" / f"epoch-{e:03d}.safetensors" for e in range(epochs - tc.average_last + 1,
                                                                                 epochs + 1)]
    paths = [p for p in paths if p.is_file()]
    if len(paths) < 2:
        log(f"train.average_last={tc.average_last}: no average, as {len(paths)} epoch file(s) were saved "
            f"(the run has {epochs} epoch(s)); averaging needs at least 2")
        return
    model.load_state_dict(average_state_dicts([load_file(str(p)) for p in paths]))
    if measured := refresh_batch_norm(model, train_set, cfg, device):
        log(f"batch norm: statistics of the averaged weights measured on {measured} train utterances")
    save_model_dir(run_dir / "avg", cfg, model, tokenizer, extra_files=provenance_files(run_dir))
    record = {"averaged": [p.stem for p in paths]}
    key = None
    if valid_set is not None:
        record.update(validate(model, valid_set, cfg, device, tokenizer))
        key = selection_key(record)
    if (key is not None and key < best) or (tc.keep_average and (valid_set is None or key is not None)):
        save_model_dir(run_dir / "best", cfg, model, tokenizer, extra_files=provenance_files(run_dir))
        record["best"] = True
    _log_record(run_dir, record)


def _log_record(run_dir: Path, record: dict, progress: str = "") -> None:
    """A line of RUN/log.jsonl, and the same as ``key=value`` on stderr after ``progress``."""
    with open(run_dir / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    line = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
    log(f"{progress} {line}" if progress else line)


@torch.no_grad()
def refresh_batch_norm(model: AcousticModel, dataset, cfg: Config, device) -> int:
    """Measure the running statistics of the model's batch-norm layers again, over ``dataset`` as
    inference sees it (speed 1, no augmentation or dropout), and return the utterances read (0: the
    model has none). Averaged weights need it: the mean of the epochs' statistics is not the
    statistics of the mean of their weights (SWA's update_bn, Izmailov et al. 2018)."""
    norms = batch_norms(model)
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:  # momentum None: a cumulative mean over every batch, not a moving one
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    sampler = BucketBatchSampler(dataset.durations, cfg.train.batch_seconds, cfg.train.max_batch_size,
                                 shuffle=False)
    read = 0
    for batch in BatchLoader(dataset, sampler):
        if batch is not None:  # unreadable audio: the dataset named the file
            model(batch.waveforms.to(device), batch.wave_lengths.to(device))
            read += len(batch.indices)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train()
    return read


def batch_norms(model: AcousticModel) -> list[MaskedBatchNorm]:
    """The model's batch-norm layers (``model.norm=batch``), whose statistics a mean of weights changes."""
    return [m for m in model.modules() if isinstance(m, MaskedBatchNorm)]


def average_state_dicts(states: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors; integer buffers (batch counts) from the last."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = sum(s[key].double() for s in states).div(len(states)).to(last.dtype)
        else:
            out[key] = last
    return out
