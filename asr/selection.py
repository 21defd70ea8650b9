"""Model selection on the valid set: each epoch's greedy WER/CER and CTC loss, and the average
of the last epochs' weights (``train.average_last``), kept as best/ only if it validates better."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file

from asr.config import Config
from asr.data import BucketBatchSampler, collate
from asr.decoding import GreedyDecoder
from asr.losses import ctc_loss, log
from asr.metrics import char_errors, word_errors
from asr.model import AcousticModel
from asr.model_dir import save_model_dir
from asr.text import normalize_text


@torch.no_grad()
def validate(model, dataset, cfg, device, tokenizer) -> dict:
    """Greedy WER and CER scored as asr/evaluate.py scores them (the normalized transcript against
    the normalized hypothesis: a phone model's references are not its decoded labels, which would
    turn words into homophones), and the mean CTC loss; NaN when no utterance could be scored."""
    model.eval()
    sampler = BucketBatchSampler(dataset.durations, cfg.train.batch_seconds, cfg.train.max_batch_size,
                                 shuffle=False)
    decoder = GreedyDecoder(tokenizer)
    silent = dataset.silent  # decoded as nothing, as evaluate and transcribe do
    loss_sum, n, refs, hyps = 0.0, 0, [], []
    for items in sampler:
        batch = collate([dataset[i] for i in items]).to(device)
        log_probs, out_lengths = model(batch.waveforms, batch.wave_lengths)
        losses, valid = ctc_loss(log_probs, out_lengths, batch, tokenizer.blank_id)
        loss_sum += float(losses[valid].sum())
        n += int(valid.sum())
        for hyp, i in zip(decoder.decode(log_probs.cpu(), out_lengths.cpu()), batch.indices):
            hyps.append("" if i in silent else normalize_text(hyp.text))
            refs.append(dataset.texts[i])  # normalized as it was read
    model.train()
    if not n:
        log(f"warning: {dataset.source or 'valid'}: none of its {len(dataset)} utterances could be scored (each too "
            f"short for its transcript at the model's frame rate): valid_loss is NaN, and cannot pick best/")
    return {"valid_loss": loss_sum / n if n else math.nan, "valid_wer": word_errors(refs, hyps).rate,
            "valid_cer": char_errors(refs, hyps).rate}


def selection_key(record: dict) -> tuple[float, float, float] | None:
    """How a validated model ranks for best/, lower first: valid WER, ties broken on CER, then on
    loss; None when validation scored nothing. Without a valid set the latest epoch ranks first."""
    if "valid_wer" not in record:
        return (-record["epoch"], 0.0, 0.0)
    if math.isnan(record["valid_loss"]):
        return None
    return (record["valid_wer"], record["valid_cer"], record["valid_loss"])


def average_last_epochs(cfg: Config, model: AcousticModel, tokenizer, valid_set, device, best: tuple,
                        epochs: int) -> None:
    """Average the weights saved at the end of the last ``train.average_last`` of ``epochs`` into
    RUN/avg/, and make it best/ if it ranks above ``best`` (selection_key) on valid (loads into
    ``model``: training is over)."""
    run_dir, tc = Path(cfg.train.output_dir), cfg.train
    paths = [run_dir / "epochs" / f"epoch-{e:03d}.safetensors" for e in range(epochs - tc.average_last + 1,
                                                                                 epochs + 1)]
    paths = [p for p in paths if p.is_file()]
    if len(paths) < 2:
        log(f"train.average_last={tc.average_last}: no average, as {len(paths)} epoch file(s) were saved "
            f"(the run has {epochs} epoch(s)); averaging needs at least 2")
        return
    model.load_state_dict(average_state_dicts([load_file(str(p)) for p in paths]))
    save_model_dir(run_dir / "avg", cfg, model, tokenizer)
    record = {"averaged": [p.stem for p in paths]}
    if valid_set is not None:
        record.update(validate(model, valid_set, cfg, device, tokenizer))
        key = selection_key(record)
        if key is not None and key < best:
            save_model_dir(run_dir / "best", cfg, model, tokenizer)
            record["best"] = True
    with open(run_dir / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))


def average_state_dicts(states: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors; integer buffers (batch counts) from the last."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = sum(s[key].double() for s in states).div(len(states)).to(last.dtype)
        else:
            out[key] = last
    return out
