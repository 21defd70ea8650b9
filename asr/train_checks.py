"""What training checks of its data, and says: manifest durations against the files' headers,
repeated ids, audio below the model's rate, missing and unreadable files, transcripts left out,
utterances too short for their transcripts (refused when that is all of them), digital silence
with a transcript, and which valid utterances the loss leaves out. Each kind of problem is named
a few at a time, then counted."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch

from asr import distributed
from asr import user_warnings
from asr.audio import AudioError, audio_info
from asr.config import Config, ConfigError
from asr.user_warnings import gathered_warnings, report_cut
from asr.data import SpeechDataset, Utterance, frames_needed, read_manifest
from asr.losses import log
from asr.model import AcousticModel
from asr.model_dir import ModelDirError, check_model_dir
from asr.segmenter import SegmenterOptions


class TrainingError(RuntimeError):
    pass


def check_trainable(cfg: Config, resume: bool = False) -> None:
    """What a config needs to train that Config itself cannot ask (other commands load configs
    without a manifest), from the files' presence alone; `asr train --gpus N` asks before it starts
    N processes, and `--check` before a recipe moves a finished run aside. (``resume``: a run that
    goes on starts from its own checkpoint, not from ``train.init_from``.)"""
    if not cfg.train.train_manifest:
        raise ConfigError("train.train_manifest is not set: give it in the config or as "
                          "train.train_manifest=MANIFEST.jsonl")
    for manifest in (cfg.train.train_manifest, cfg.train.valid_manifest):
        if manifest and not Path(manifest).is_file():
            read_manifest(manifest)  # raises its one-line error (not found, a directory); reads nothing
    t = cfg.train
    # read for the phone head's targets and a new phone model's tokens (a fine-tuned phone model
    # keeps its own spellings: its lexicon need not be there)
    if t.phone_ctc_weight or (t.units == "phone" and not t.init_from):
        for part in (part.strip() for part in str(t.phone_lexicon).split(",")):
            if not part:
                raise ConfigError(f"train.phone_lexicon={t.phone_lexicon!r}: an empty name (give lexicon files, "
                                  "or 'cmudict')")
            if part != "cmudict" and not Path(part).is_file():
                raise ConfigError(f"train.phone_lexicon: {part}: no such lexicon file (or use 'cmudict')")
    resumable = resume and (Path(t.output_dir) / "last" / "train_state.pt").is_file()  # else a run starts anew
    if t.init_from and not resumable:
        try:
            check_model_dir(t.init_from)
        except ModelDirError as e:
            raise ConfigError(f"train.init_from: {e}") from None
    a, dim = cfg.augment, cfg.features.dim
    if a.freq_masks > 0 and a.freq_mask_width >= dim:  # (a saved model may hold such a config: refused here only)
        raise ConfigError(f"augment.freq_mask_width {a.freq_mask_width} is as wide as the {dim} features: a mask "
                          f"could blank them all; give augment.freq_mask_width below {dim} (or augment.freq_masks=0)")


def unreadable_files(dataset: SpeechDataset) -> list[tuple[str, str]]:
    """(audio file, problem) for each utterance whose audio failed to load so far."""
    return [(dataset.utterances[i].audio_filepath, problem) for i, problem in sorted(dataset.unreadable.items())]


def none_read(dataset: SpeechDataset, name: str = "train") -> str:
    """``nothing_readable`` of a whole manifest: the files left out as missing when it was loaded
    counted and named too, not only those that failed as they were read."""
    return nothing_readable(dataset.source, len(dataset) + len(dataset.missing),
                            dataset.missing + unreadable_files(dataset), name)


def nothing_readable(manifest: str, count: int, problems: list[tuple[str, str]], name: str = "train",
                     shown: int = 3) -> str:
    """The error when none of a manifest's ``count`` utterances has readable audio, naming the
    first few files (worded as asr.evaluate.none_readable)."""
    first = "; ".join(f"{path}: {problem}" for path, problem in problems[:shown])
    more = f"; {len(problems) - shown} more" if len(problems) > shown else ""
    return (f"{manifest}: no readable {name} utterances: {len(problems)} of {count} unreadable "
            f"(first: {first}{more})")


# A manifest duration further than both of these from its file's is reported (importers round theirs,
# MP3 headers estimate theirs); the file's own is used either way.
DURATION_SLACK_SECONDS, DURATION_SLACK_FRACTION = 0.1, 0.1


def listed(lines: list[str], summary: str, say=log) -> None:
    """asr.user_warnings.listed, said as training says everything (``log``, without the CLI's "asr: ")."""
    user_warnings.listed(lines, summary, say)


def _name(utt: Utterance) -> str:
    return utt.id or utt.audio_filepath


def file_durations(utts: list[Utterance], sample_rate: int):
    """(the utterances with their files' own durations, [(utterance, its manifest duration) where that
    was off], [(utterance, its file's rate) below ``sample_rate``], [the warnings of files cut short,
    for report_split]), from the headers (cheap: 0.4 s for 2,380 FLAC files): batching and
    train.max_duration need the real lengths, and a manifest's may be wrong. A header that cannot be
    read leaves the manifest's duration (the file is reported as it is read)."""
    checked, off, narrow = [], [], []
    with gathered_warnings() as cut:  # listed by report_split: a corpus may hold many
        for u in utts:
            try:
                info = audio_info(u.audio_filepath)
            except AudioError:
                checked.append(u)
                continue
            if info.sample_rate < sample_rate:
                narrow.append((u, info.sample_rate))
            error = abs(info.duration - u.duration)
            checked.append(replace(u, duration=info.duration))
            if error > DURATION_SLACK_SECONDS and error > DURATION_SLACK_FRACTION * u.duration:
                off.append((checked[-1], u.duration))
    return checked, off, narrow, cut


def _warn_of_duplicates(path, utts: list[Utterance], name: str) -> None:
    """Worded as asr evaluate warns (a manifest concatenated twice, two corpora whose ids collide)."""
    repeated = [i for i, n in Counter(_name(u) for u in utts).items() if n > 1]
    if repeated:
        log(f"warning: {path}: {len(repeated)} utterance id(s) occur more than once (e.g. {repeated[0]!r}): "
            f"each entry is {'trained on' if name == 'train' else 'scored'} (one listed twice counts twice)")


def report_split(path, name, cfg, utts, missing, off, narrow, too_long, unreadable, skipped, cut=()) -> None:
    """load_split's report of what it found wrong with a manifest, a few by name and a total each
    (``cut``: the warnings of files cut short, from file_durations)."""
    _warn_of_duplicates(path, utts, name)
    report_cut(cut, path, name, log)  # a file probed then read is in ``cut`` twice, named once
    if missing:
        listed([f"skipped {name} utterance {f'{u.id}: ' if u.id else ''}{u.audio_filepath}: {problem}"
                for u, problem in missing],
               f"{path}: skipped {len(missing)} {name} utterance(s) whose audio file is missing, empty or not a file")
    if off:
        listed([f"{name} utterance {_name(u)}: {u.audio_filepath} lasts {u.duration:.2f} s, not the manifest's "
                f"{declared:g} s" for u, declared in off],
               f"warning: {path}: {len(off)} {name} utterance(s) whose manifest duration is not their file's: "
               "the files' durations are used")
    if narrow:
        listed([f"{name} utterance {_name(u)}: {u.audio_filepath} is recorded at {rate} Hz" for u, rate in narrow],
               f"warning: {path}: {len(narrow)} {name} utterance(s) recorded below the model's "
               f"{cfg.features.sample_rate} Hz: upsampled, with nothing in the band above their Nyquist frequency "
               "that the model hears in the rest")
    if unreadable:
        log(f"{path}: skipped {len(unreadable)} {name} utterance(s) whose audio is unreadable")
    if skipped:
        listed([f"skipped {name} utterance {_name(u)}: {reason}" for u, reason in skipped],
               f"{path}: skipped {len(skipped)} of {len(utts)} {name} utterance(s) "
               f"({100 * len(skipped) / len(utts):.0f}%) for their transcripts")
    if too_long:
        listed([f"skipped {name} utterance {_name(u)}: {u.duration:.2f} s" for u in too_long],
               f"{path}: skipped {len(too_long)} {name} utterance(s) longer than train.max_duration="
               f"{cfg.train.max_duration:g} s")


@torch.no_grad()
def output_frames(model: AcousticModel, samples: list[int]) -> list[int]:
    """The model's output frames for utterances of these many samples, by its own length rule: its
    subsampling is run on one-frame inputs (the lengths it returns do not depend on the features)."""
    device = next(model.parameters()).device
    lengths = model.frontend.extractor.output_lengths(torch.tensor(samples, dtype=torch.long, device=device))
    _, frames = model.subsampling(torch.zeros(len(samples), 1, model.features_cfg.dim, device=device), lengths)
    return frames.tolist()


def too_short(dataset: SpeechDataset, model: AcousticModel, speed: float = 1.0) -> list[tuple[int, int, int]]:
    """(index, output frames, frames needed) of each utterance too short for its labels (CTC needs
    a frame per label, and a blank between repeated ones) when played ``speed`` times as fast, by
    its file's duration (``load_split`` has read it)."""
    frames = output_frames(model, [math.ceil(d * dataset.sample_rate / speed) for d in dataset.durations])
    needed = [frames_needed(t) for t in dataset.targets]
    return [(i, f, n) for i, (f, n) in enumerate(zip(frames, needed)) if f < n]


def check_trainable_lengths(dataset: SpeechDataset, model: AcousticModel, speed_factors, say) -> None:
    """Name the training utterances too short for their transcripts (the loss leaves them out,
    every epoch: icefall's remove_short_and_long_utt names them too), and refuse a set where that
    is every utterance, even slowed down by the slowest ``speed_factors``: nothing would train."""
    short = too_short(dataset, model)
    frame_ms = 1000 * model.frame_shift
    if short:
        listed([f"train utterance {_name(dataset.utterances[i])}: too short for its transcript ({frames} output "
                f"frames, {needed} needed)" for i, frames, needed in short],
               f"{dataset.source}: {len(short)} train utterance(s) too short for their transcripts at the model's "
               f"{frame_ms:g} ms frames: the loss leaves them out (skipped_too_short counts them)", say)
    slowest = min(speed_factors or (1.0,))
    if len(short) == len(dataset) and (slowest >= 1.0 or len(too_short(dataset, model, slowest)) == len(dataset)):
        i, frames, needed = short[0]
        raise TrainingError(f"{dataset.source}: every one of its {len(dataset)} train utterances is too short for "
                            f"its transcript at the model's {frame_ms:g} ms output frames (CTC needs a frame per "
                            f"label, and a blank between repeated ones; e.g. {_name(dataset.utterances[i])}: "
                            f"{frames} frames, {needed} needed): nothing can train")


def valid_loss_note(dataset: SpeechDataset, model: AcousticModel) -> str | None:
    """The line saying which valid utterances the loss leaves out while WER and CER count them
    (those with no labels, their transcripts unspellable; those too short for their transcripts,
    by the audio validation runs; and those of the segmenter's max_seconds or more, which
    validation decodes in pieces and never runs whole: asr.selection.validate); None when the
    loss counts them all."""
    from asr.selection import long_utterances  # validate's own rule

    unlabelled = dataset.unspellable
    long = long_utterances(dataset) - set(unlabelled)  # each left out counted once, for its first reason
    rest = [i for i in range(len(dataset)) if i not in long and i not in unlabelled]
    frames = output_frames(model, [dataset.waveform(i).numel() for i in rest])
    short = [i for i, f in zip(rest, frames) if f < frames_needed(dataset.targets[i])]
    if not short and not unlabelled and not long:
        return None
    shown = "; ".join(f"{_name(dataset.utterances[i])}: {why}" for i, why in list(unlabelled.items())[:3])
    parts = ([f"{len(unlabelled)} with a transcript the model cannot spell, e.g. {shown}"] if unlabelled else []) \
        + ([f"{len(short)} too short for their transcripts"] if short else []) \
        + ([f"{len(long)} of {SegmenterOptions().max_seconds:g} s or more, decoded in pieces and never run whole"]
           if long else [])
    return (f"{dataset.source}: the valid loss is over {len(rest) - len(short)} of its {len(dataset)} utterances "
            f"(not {'; '.join(parts)}); valid WER and CER are over all {len(dataset)}, as asr evaluate scores them")


def valid_in_train_note(train: SpeechDataset, valid: SpeechDataset) -> str | None:
    """The warning for valid audio that is also trained on (the same manifest given twice, or a
    split made twice): best/ would be picked on what the model learned, and look better than it is."""
    trained = {os.path.abspath(u.audio_filepath) for u in train.utterances}  # no syscalls: 100k+ utterances
    shared = [u for u in valid.utterances if os.path.abspath(u.audio_filepath) in trained]
    if not shared:
        return None
    return (f"warning: {valid.source}: {len(shared)} of its {len(valid)} utterances are trained on too "
            f"({train.source} has their audio, e.g. {shared[0].audio_filepath}): valid WER and best/ "
            "measure what the model learned, not how it does on new speech")


def warn_of_silence(manifest: str, dataset, silent: list[int], d, device) -> None:
    """Name the training utterances found to hold no speech (digital silence, or steady noise alone):
    each has a transcript, so the model is taught to hear words where validation and `asr evaluate`
    hear none. The ranks pool what they saw (an epoch's last round of batches repeats its first
    ones: two ranks may see the same utterance), and the main one names them all."""
    seen = torch.zeros(len(dataset.utterances), dtype=torch.int32, device=device)
    seen[sorted(set(silent))] = 1
    found = distributed.all_sum(seen, d).nonzero().flatten().tolist()
    total = len(found)
    if total and d.is_main:
        named = [f"silent train utterance {_name(dataset.utterances[i])}: {dataset.utterances[i].audio_filepath}"
                 for i in found]
        listed(named, f"warning: {manifest}: {total} train utterance(s) are digital silence (below "
                      f"{20 * math.log10(SegmenterOptions().silence_rms):.0f} dBFS) or steady noise alone yet have a "
                      "transcript: the model learns words in silence, which validation and asr evaluate score as "
                      "saying nothing")
