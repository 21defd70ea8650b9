"""What a training run shows as it goes: each epoch's progress bar and where the run is
(``[3/20, ~41 min left]``), TensorBoard's per-step ``train/*`` scalars, and the epoch's record for
log.jsonl (asr.selection.end_epoch adds the validation's to it, writes it and logs it as ``epoch/*``).

An epoch's ``totals`` are the sums asr.train adds up over all ranks, in this order: loss,
utterances, too short, audio seconds, phone loss, phone utterances, unreadable, wall seconds,
non-finite steps.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from asr.text import time_left


@dataclass
class EpochSums:
    """An epoch's sums on one rank since this process started it (a resumed epoch's earlier ones are
    carried in the train state); ``as_list`` gives them as ``totals``, in the order above."""
    loss: float = 0.0
    utterances: int = 0
    too_short: int = 0
    audio_seconds: float = 0.0
    phone_loss: float = 0.0
    phone_utterances: int = 0
    non_finite: int = 0  # steps skipped for a non-finite loss or gradient (fp16 overflows included)

    def as_list(self, unreadable: int, seconds: float) -> list[float]:
        return [self.loss, self.utterances, self.too_short, self.audio_seconds, self.phone_loss,
                self.phone_utterances, unreadable, seconds, self.non_finite]


TOTALS = len(EpochSums().as_list(0, 0.0))  # an epoch's totals, as the train state keeps them (epoch_totals)


def open_tensorboard(run_dir: Path, step: int, resumed: bool):
    """The run's TensorBoard writer, in ``run_dir/tb``."""
    from torch.utils.tensorboard import SummaryWriter  # slow import; only when training

    # resumed: TensorBoard hides what the killed run logged past the checkpoint (its steps and
    # epochs are trained and logged again, every tag at its global step), not shown twice
    return SummaryWriter(str(run_dir / "tb"), purge_step=step + 1 if resumed else None)


def log_step(writer, step: int, loss: float, utterances: int, phone_loss: float, phone_utterances: int,
             grad_norm, lr: float) -> None:
    """A step that updated the weights: its loss per utterance (and the phone head's), gradient norm and rate."""
    writer.add_scalar("train/loss", loss / utterances, step)
    if phone_utterances:
        writer.add_scalar("train/phone_loss", phone_loss / phone_utterances, step)
    writer.add_scalar("train/grad_norm", float(grad_norm), step)
    writer.add_scalar("train/lr", lr, step)


def epoch_record(epoch: int, step: int, lr: float, totals: list[float], phone_ctc: bool) -> dict:
    """The epoch's line of log.jsonl, as far as training knows it (``epoch`` counted from 1)."""
    seconds = totals[7]
    record = {"epoch": epoch, "step": step, "train_loss": totals[0] / totals[1] if totals[1] else math.nan,
              "lr": lr, "epoch_seconds": round(seconds, 1),
              "audio_seconds_per_second": round(totals[3] / max(seconds, 1e-9), 1),
              "skipped_too_short": int(totals[2])}
    if totals[6]:  # the files were named as they failed
        record["skipped_unreadable"] = int(totals[6])
    if phone_ctc:  # the phone head's CTC per utterance that has phones
        record["train_phone_loss"] = totals[4] / totals[5] if totals[5] else math.nan
    return record


def epoch_progress(done: int, epochs: int, finished: list[float], this_epoch: float) -> str:
    """``[3/20, ~41 min left]``: the epochs done of those planned and, while some are left, the time
    they will take at the pace of the ``finished`` epochs' wall seconds (this process's, validation
    included; the first, slower as it decodes the audio, counts only while it is alone), or, before
    any, at ``this_epoch``'s training seconds."""
    if done >= epochs:
        return f"[{done}/{epochs}]"
    pace = statistics.mean(finished[1:] or finished) if finished else this_epoch
    return f"[{done}/{epochs}, {time_left((epochs - done) * pace)}]"


def why_untrained(totals: list[float]) -> str:
    """What the epoch's sums say left no step to train on."""
    parts = [f"{int(n)} {what}" for n, what in ((totals[2], "utterance(s) too short for their transcripts"),
                                                (totals[8], "step(s) with a non-finite loss or gradient"),
                                                (totals[6], "utterance(s) with unreadable audio")) if n]
    return ", ".join(parts) or "no batch to train on"


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on a terminal's stderr; None when not ``enabled`` or not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
