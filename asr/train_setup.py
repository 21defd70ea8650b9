"""What a training run starts from: its model (new, from ``train.init_from``, or resumed from
``last/``, each checked against the config) with its phone head, its data splits (checked by
asr.train_checks), global feature statistics, and the lines that describe it. (Its optimizer, where a
run resumed with another number of processes or batch size goes on, and what else a resumed run puts
right, are asr.train_resume's.)"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from asr import distributed
from asr.audio import AudioError
from asr.audio_checks import path_problem
from asr.config import Config
from asr.data import SpeechDataset, collate, read_manifest, total_hours
from asr.features import StatsAccumulator
from asr.losses import log
from asr.model import AcousticModel
from asr.model_dir import LoadedModel, load_model_dir
from asr.phones import LexiconError, PhoneLexicon
from asr.provenance import file_identity
from asr.text import plural
from asr.tokenizers import PhoneTokenizer, Tokenizer, TokenizerError, build_tokenizer
from asr.train_checks import TrainingError, file_durations, none_read, nothing_readable, report_split
from asr.user_warnings import gathered_warnings


def compute_cmvn(model: AcousticModel, dataset: SpeechDataset, device, d=distributed.Dist(),
                 batch_size=16) -> int:
    """Global mean/std of the unaugmented training features (each rank its share, summed);
    returns how many utterances had readable audio (all ranks)."""
    acc = StatsAccumulator(model.features_cfg.dim)
    extractor = model.frontend.extractor
    indices = list(range(d.rank, len(dataset), d.world_size))
    for start in range(0, len(indices), batch_size):
        examples = []
        for i in indices[start: start + batch_size]:
            try:
                examples.append(dataset[(i, 1.0)])
            except AudioError:
                pass  # the dataset warned; training leaves it out too
        if not examples:
            continue
        batch = collate(examples)
        with torch.no_grad():
            feats, lengths = extractor(batch.waveforms.to(device), batch.wave_lengths.to(device))
        acc.add(feats, lengths)
    local = [float(acc.count), float(len(indices) - sum(i in dataset.unreadable for i in indices))]
    sums = distributed.all_sum(torch.cat([acc.sum, acc.sumsq, torch.tensor(local, dtype=torch.float64)]).to(device), d)
    dim = acc.sum.numel()
    acc.sum, acc.sumsq, acc.count, read = sums[:dim].cpu(), sums[dim: 2 * dim].cpu(), int(sums[-2]), int(sums[-1])
    if read == 0:  # every rank agrees: the sums are global
        raise TrainingError(none_read(dataset))
    mean, std = acc.result()
    model.frontend.normalizer.set_stats(mean.to(device), std.to(device))
    return read


def load_to_train(path, cfg: Config, device) -> LoadedModel:
    """A model directory, with ``cfg``'s augmentation (model directories load without it)."""
    loaded = load_model_dir(path, device)
    loaded.model.frontend.set_augment(cfg.augment)
    return loaded


def initial_model(cfg: Config, device, say=log) -> tuple[Tokenizer, AcousticModel]:
    """The tokenizer and model of ``train.init_from``, checked against ``cfg``, ready to train. A
    phone model given another ``train.phone_lexicon`` than its own learns its spellings (``respelled``)."""
    loaded = load_to_train(cfg.train.init_from, cfg, device)
    check_same_model(loaded, cfg, f"train.init_from={cfg.train.init_from}")
    tokenizer = loaded.tokenizer
    if isinstance(tokenizer, PhoneTokenizer) and cfg.train.phone_lexicon != loaded.config.train.phone_lexicon:
        tokenizer = respelled(tokenizer, cfg, say)
    return tokenizer, loaded.model


def respelled(tokenizer: PhoneTokenizer, cfg: Config, say) -> PhoneTokenizer:
    """A phone model fine-tuned with another lexicon than it was trained with (a corpus lexicon's
    odd first forms put after cmudict's, say) learns the new lexicon's spellings: its targets follow
    the config, as the phone head's do. Said when a word the model knew changes."""
    try:
        lexicon = PhoneLexicon.load(cfg.train.phone_lexicon)
        new = tokenizer.respelled(lexicon)
    except (LexiconError, TokenizerError) as e:
        raise TrainingError(f"train.phone_lexicon (the targets of the phone model {cfg.train.init_from}): "
                            f"{e}") from None
    old = tokenizer.pronunciations
    changed = [w for w in old if new.pronunciations[w] != old[w]]
    if changed:
        shown = ", ".join(f"{w}: {' '.join(old[w])} -> {' '.join(new.pronunciations[w])}" for w in changed[:3])
        say(f"train.phone_lexicon={cfg.train.phone_lexicon} spells {len(changed):,} of the {len(old):,} words of "
            f"{cfg.train.init_from}'s tokenizer otherwise ({shown}{', ...' if len(changed) > 3 else ''}): the "
            "model learns these spellings")
    return new


def _spells_otherwise(lexicon: str, tokenizer: PhoneTokenizer) -> bool:
    """Whether ``lexicon`` (a ``train.phone_lexicon`` value) spells a word otherwise than
    ``tokenizer`` does, or one it lacks; one that cannot be read counts as other."""
    try:
        given = PhoneLexicon.load(lexicon).pronunciations
    except LexiconError:
        return True
    return any(tokenizer.pronunciations.get(word) != spelling for word, spelling in given.items())


def check_same_model(loaded: LoadedModel, cfg: Config, source: str) -> None:
    """Refuse a checkpoint whose features, model or units differ from ``cfg``'s: training would
    go on with the checkpoint's, and the run's config.yaml would record ``cfg``'s."""
    differ = [f"{section}.{key}: {theirs!r} there, {ours!r} here"
              for section in ("features", "model")
              for key, theirs in getattr(loaded.config, section).__dict__.items()
              if (ours := getattr(getattr(cfg, section), key)) != theirs]
    if loaded.tokenizer.kind != cfg.train.units:
        differ.append(f"units: {loaded.tokenizer.kind!r} there, train.units={cfg.train.units!r} here")
    if differ:
        raise TrainingError(f"{source}: its config differs from this one ({'; '.join(differ)})")


def load_split(path: str, cfg: Config, tokenizer, name: str, quiet=False, phone_lexicon=None,
               bpe_dropout: float = 0.0, max_utts: int = 0, read_audio: bool = False, span=None,
               as_evaluated: bool = False) -> SpeechDataset:
    """A manifest's usable utterances, the rest reported (unless ``quiet``; each kind of problem a
    few by name and a total): audio files that do not exist (a cheap check here; corrupt files
    show when first read), transcripts outside the vocabulary, utterances over train.max_duration
    (by their files' durations, which replace the manifest's: ``file_durations``). ``max_utts``
    keeps the first that many. With ``read_audio`` all the audio is read now and unreadable files
    are left out too: for the valid set, which validation reads whole every epoch with no way to
    skip an utterance. ``span``: see SpeechDataset.

    ``as_evaluated`` (the valid set) keeps every utterance `asr evaluate` scores: none is left out
    for its length or transcript (SpeechDataset's ``keep_unspellable``). One whose transcript the
    tokenizer cannot spell has no labels (``unspellable`` says why): it counts in WER and CER but
    not in the loss (asr.selection.validate). Such utterances go last, so that the one validation
    draws each epoch (the first: asr.plots.log_posteriorgram) shows a transcript the model can spell."""
    utts = read_manifest(path)
    problems = [path_problem(u.audio_filepath) for u in utts]
    missing = [(u, problem) for u, problem in zip(utts, problems) if problem]
    present, off, narrow, cut = file_durations([u for u, problem in zip(utts, problems) if not problem],
                                               cfg.features.sample_rate)  # a rank that is ``quiet`` drops ``cut``
    limit = math.inf if as_evaluated else cfg.train.max_duration  # evaluate cuts a long one at pauses
    too_long = [u for u in present if u.duration > limit]
    kept = [u for u in present if u.duration <= limit]
    dataset = SpeechDataset(kept, tokenizer, cfg.features.sample_rate, cache=cfg.train.cache_audio,
                            phone_lexicon=phone_lexicon, bpe_dropout=bpe_dropout, seed=cfg.train.seed,
                            source=str(path), span=span, keep_unspellable=as_evaluated)
    dataset.missing = [(u.audio_filepath, problem) for u, problem in missing]
    if max_utts:
        dataset.keep(range(min(max_utts, len(dataset))))
    with gathered_warnings() as damaged:  # cut short where its header did not tell: listed with ``cut``
        unreadable = dataset.drop_unreadable() if read_audio else []  # each one warned about as it is read
    cut += damaged
    if dataset.unspellable:
        dataset.keep(sorted(range(len(dataset)), key=lambda i: i in dataset.unspellable))
    if not quiet:
        report_split(path, name, cfg, utts, missing, off, narrow, too_long, unreadable, dataset.skipped, cut)
        log(f"{name}: {plural(len(dataset), 'utterance')}, {total_hours(dataset.utterances):.2f} h")
        if phone_lexicon is not None:
            missing_words = phone_lexicon.missing_words(u.text for u in dataset.utterances)
            with_phones = sum(p is not None for p in dataset.phones)
            common = ", ".join(w for w, _ in sorted(missing_words.items(), key=lambda kv: -kv[1])[:8])
            log(f"{name}: phones for {with_phones} of {len(dataset)} utterances from {phone_lexicon.source} "
                f"({len(phone_lexicon.phones)} phones)" + (f"; {len(missing_words)} words missing, e.g. {common}"
                                                           if missing_words else ""))
    if len(dataset) == 0:
        lost = [(u.audio_filepath, problem) for u, problem in missing + unreadable]
        if lost and len(lost) == len(utts):  # not the transcripts' fault: say what is wrong with the audio
            raise TrainingError(nothing_readable(path, len(utts), lost, name))
        raise TrainingError(f"{path}: no usable utterances")
    return dataset


def data_identity(cfg: Config) -> dict:
    """The identities of a run's train and valid manifests and of the weights it started from
    (train.init_from), kept in its train state."""
    init = cfg.train.init_from
    return {"train_manifest": file_identity(cfg.train.train_manifest),
            "valid_manifest": file_identity(cfg.train.valid_manifest),
            "init_from": file_identity(str(Path(init) / "model.safetensors")) if init else None}


def check_same_data(state: dict, here: dict, cfg: Config, run_dir: Path) -> None:
    """Refuse to resume a run on data that changed since (a recipe re-split its corpus): it would
    go on with the model of the old split, and the new valid set may hold former training speakers.
    ``here``: ``data_identity(cfg)`` now. States saved before identities were kept resume as they did."""
    saved = state.get("data") or {}
    for key in ("train_manifest", "valid_manifest", "init_from"):
        old, new = saved.get(key), here[key]
        if not old or not new or old["sha1"] == new["sha1"]:
            continue  # not recorded (none, or an older run), unreadable now (named as it is loaded), or the same
        given = getattr(cfg.train, key)
        if key == "init_from":  # a fine-tuning run of a model trained on since: its result is of the old one
            what = f"train.init_from model: {given}'s weights changed since"
        elif old["path"] == new["path"]:
            what = f"{given} (changed since)"
        else:
            what = f"{key.replace('_', ' ')} ({old['path']}, not the content of {given})"
        raise TrainingError(f"{run_dir} was trained on another {what}; use another train.output_dir, "
                            f"or delete {run_dir}")


# What a run writes before or beside its first checkpoint: a new run there would mix with it.
RUN_FILES = ("last", "best", "log.jsonl", "epochs", "avg")


def model_to_train(cfg: Config, resume: bool, device, say, data: dict):
    """(tokenizer, model, train state or None, the config of the run that saved it or None):
    resumed (on the same ``data``: data_identity), initialized from a model, or new."""
    tc, run_dir, state, saved_cfg = cfg.train, Path(cfg.train.output_dir), None, None
    resumable = (run_dir / "last" / "train_state.pt").is_file()
    if resume and resumable:
        loaded = load_to_train(run_dir / "last", cfg, device)
        check_same_model(loaded, cfg, f"{run_dir / 'last'}, resumed (--resume or, from Python, train(cfg, "
                                      "resume=True))")
        tokenizer, model, saved_cfg = loaded.tokenizer, loaded.model, loaded.config
        state = torch.load(run_dir / "last" / "train_state.pt", weights_only=True, map_location="cpu")
        check_same_data(state, data, cfg, run_dir)
        planned = min(state.get("planned_epochs") or tc.epochs, tc.epochs) if tc.time_budget_minutes else tc.epochs
        if state["epoch"] >= planned:
            say(f"{run_dir} has trained all its {planned} epochs" + (
                f" (of train.epochs={tc.epochs}, as train.time_budget_minutes={tc.time_budget_minutes:g} planned): "
                "nothing to resume (without train.time_budget_minutes, train.epochs trains on)"
                if planned < tc.epochs else ": nothing to resume (a larger train.epochs trains on)"))
        else:
            say(f"resuming {run_dir} at epoch {state['epoch'] + 1}, step {state['step']}")
        if isinstance(tokenizer, PhoneTokenizer) and saved_cfg.train.phone_lexicon != tc.phone_lexicon \
                and _spells_otherwise(tc.phone_lexicon, tokenizer):  # (not: the same files, named otherwise)
            say(f"train.phone_lexicon={tc.phone_lexicon} is not the run's own ({saved_cfg.train.phone_lexicon}): a "
                "resumed run keeps its spellings (to learn the new ones, fine-tune its best/ with train.init_from)")
    elif any((run_dir / name).exists() for name in RUN_FILES):
        if resumable:
            raise TrainingError(f"{run_dir} already holds a run: resume it (--resume; from Python, "
                                "train(cfg, resume=True)), or use another train.output_dir")
        raise TrainingError(f"{run_dir} holds a run with no checkpoint to resume from (no last/train_state.pt): "
                            f"use another train.output_dir, or delete {run_dir}")
    elif resume:
        say(f"nothing to resume in {run_dir}: starting a new run")
    if state is None and tc.init_from:
        tokenizer, model = initial_model(cfg, device, say)
        say(f"starting from the weights of {tc.init_from}")
    elif state is None:
        try:
            tokenizer = build_tokenizer(tc.units, (u.text for u in read_manifest(tc.train_manifest)),
                                        tc.bpe_vocab_size, phone_lexicon=tc.phone_lexicon)
        except LexiconError as e:
            raise TrainingError(f"train.phone_lexicon: {e}") from None
        if tc.units == "bpe" and len(tokenizer) < tc.bpe_vocab_size + 1:  # sentencepiece stops when merges run out
            say(f"train.bpe_vocab_size={tc.bpe_vocab_size}: the training words make only "
                f"{len(tokenizer) - 1} units, so the model has {len(tokenizer)} outputs")
        model = AcousticModel(cfg.features, cfg.model, len(tokenizer), cfg.augment).to(device)
    return tokenizer, model, state, saved_cfg


def describe_run(cfg: Config, model, tokenizer, device, d, weight_noise, weight_drop, say,
                 durations: list[float] = ()) -> None:
    """What is about to train, one line per part switched on; training ``durations`` over a batch, counted."""
    tc = cfg.train
    slowest = min(cfg.augment.speed_factors)
    if over := sum(seconds / slowest > tc.batch_seconds for seconds in durations):  # train.max_duration allows it
        say(f"{over} of {len(durations)} training utterances are longer than train.batch_seconds={tc.batch_seconds:g} s"
            + (f" at speed factor {slowest:g}" if slowest != 1 else "") + ": each can make a batch of its own, over "
            "that budget")
    say(f"model: {cfg.model.num_layers}x{cfg.model.hidden_size} {cfg.model.cell} "
        f"{'bi' if cfg.model.bidirectional else 'uni'}directional, {model.num_parameters():,} parameters, "
        f"{len(tokenizer)} tokens, device {device}, {d.world_size} process(es)")
    if cfg.inter_ctc_layer:
        say(f"intermediate CTC: layer {cfg.inter_ctc_layer} at weight {tc.inter_ctc_weight}")
    if cfg.augment.noise_prob > 0:
        say(f"noise: {model.frontend.noise.describe()}")
    if cfg.phone_ctc_layer:
        say(f"phone CTC: layer {cfg.phone_ctc_layer} at weight {tc.phone_ctc_weight} "
            f"({sum(p.numel() for p in model.phone_head.parameters()):,} parameters, training only)")
    if tc.confidence_penalty:
        say(f"confidence penalty: {tc.confidence_penalty:g} x each output frame's entropy off the loss")
    if tc.weight_noise:
        say(f"weight noise: {weight_noise.describe()}")
    if tc.weight_drop:
        say(f"weight drop: {weight_drop.describe()}")
    if tc.bpe_dropout:
        say(f"BPE-dropout: each training utterance re-segmented every epoch, merges skipped at p={tc.bpe_dropout:g}")


def attach_phone_head(model: AcousticModel, cfg: Config, state: dict | None, device) -> PhoneLexicon | None:
    """With auxiliary phone CTC, its lexicon and a phone head on the model (resumed with the saved
    one, which must match: the optimizer's state covers it)."""
    lexicon = None
    if cfg.phone_ctc_layer:
        try:
            lexicon = PhoneLexicon.load(cfg.train.phone_lexicon)
        except LexiconError as e:
            raise TrainingError(f"train.phone_lexicon: {e}") from None
        model.add_phone_head(len(lexicon), cfg.phone_ctc_layer)
        model.phone_head.to(device)
    if state is not None:
        saved = state.get("phone_head")
        if (saved is None) != (lexicon is None) or (saved is not None and saved["weight"].shape
                                                      != model.phone_head.weight.shape):
            raise TrainingError(f"{Path(cfg.train.output_dir) / 'last'}: its phone CTC head does not match this "
                                f"config (saved: {'none' if saved is None else tuple(saved['weight'].shape)}, here: "
                                f"{'none' if lexicon is None else tuple(model.phone_head.weight.shape)}); resume "
                                f"with the run's own train.phone_ctc_* and train.phone_lexicon settings")
        if saved is not None:
            model.phone_head.load_state_dict(saved)
    return lexicon
