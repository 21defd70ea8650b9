"""Model selection on the valid set: each epoch's greedy WER/CER and CTC loss, and the average
of the last epochs' weights (``train.average_last``), kept as best/ only if it validates better."""

from __future__ import annotations

import json
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


def average_last_epochs(cfg: Config, model: AcousticModel, tokenizer, valid_set, device, best_wer: float,
                        epochs: int) -> None:
    """Average the weights saved at the end of the last ``train.average_last`` of ``epochs`` into
    RUN/avg/, and make it best/ if it does better on valid (loads into ``model``: training is over)."""
    run_dir, tc = Path(cfg.train.output_dir), cfg.train
    paths = [run_dir / "epochs" / f"epoch-{e:03d}.safetensors" for e in range(epochs - tc.average_last + 1,
                                                                                 epochs + 1)]
    paths = [p for p in paths if p.is_file()]
    if len(paths) < 2:
        return
    model.load_state_dict(average_state_dicts([load_file(str(p)) for p in paths]))
    save_model_dir(run_dir / "avg", cfg, model, tokenizer)
    record = {"averaged": [p.stem for p in paths]}
    if valid_set is not None:
        record.update(validate(model, valid_set, cfg, device, tokenizer))
        if record["valid_wer"] < best_wer:
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
