"""What a training run starts from: its model (new, from ``train.init_from``, or resumed from
``last/``, each checked against the config) with its phone head, its data splits (checked by
asr.train_checks), global feature statistics, where a run resumed with another number of processes or
batch size goes on (its schedule and place in the epoch), and the lines that describe it. (Its optimizer,
and what else a resumed run puts right, are asr.train_resume's.)"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from pathlib import Path

import torch

from asr import distributed
from asr.audio import AudioError, path_problem
from asr.config import Config
from asr.data import SpeechDataset, collate, read_manifest, total_hours
from asr.features import StatsAccumulator
from asr.losses import log
from asr.model import AcousticModel
from asr.model_dir import LoadedModel, load_model_dir
from asr.phones import LexiconError, PhoneLexicon
from asr.text import plural
from asr.tokenizers import Tokenizer, build_tokenizer
from asr.train_checks import TrainingError, file_durations, nothing_readable, report_split, unreadable_files
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
        raise TrainingError(nothing_readable(dataset.source, len(dataset), unreadable_files(dataset)))
    mean, std = acc.result()
    model.frontend.normalizer.set_stats(mean.to(device), std.to(device))
    return read


def load_to_train(path, cfg: Config, device) -> LoadedModel:
    """A model directory, with ``cfg``'s augmentation (model directories load without it)."""
    loaded = load_model_dir(path, device)
    loaded.model.frontend.set_augment(cfg.augment)
    return loaded


def initial_model(cfg: Config, device) -> tuple[Tokenizer, AcousticModel]:
    """The tokenizer and model of ``train.init_from``, checked against ``cfg``, ready to train."""
    loaded = load_to_train(cfg.train.init_from, cfg, device)
    check_same_model(loaded, cfg, f"train.init_from={cfg.train.init_from}")
    return loaded.tokenizer, loaded.model


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


def file_identity(path: str) -> dict | None:
    """What tells a file's content apart (resolved path, size, SHA-1 of its bytes); None for none
    or a file that cannot be read (load_split names the problem)."""
    try:
        raw = Path(path).read_bytes() if path else None
    except OSError:
        return None
    if raw is None:
        return None
    return {"path": str(Path(path).resolve()), "size": len(raw), "sha1": hashlib.sha1(raw).hexdigest()}


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
    elif any((run_dir / name).exists() for name in RUN_FILES):
        if resumable:
            raise TrainingError(f"{run_dir} already holds a run: resume it (--resume; from Python, "
                                "train(cfg, resume=True)), or use another train.output_dir")
        raise TrainingError(f"{run_dir} holds a run with no checkpoint to resume from (no last/train_state.pt): "
                            f"use another train.output_dir, or delete {run_dir}")
    elif resume:
        say(f"nothing to resume in {run_dir}: starting a new run")
    if state is None and tc.init_from:
        tokenizer, model = initial_model(cfg, device)
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


# The sampler settings that shape an epoch's batches, by the names a user sets them with.
BATCH_SIZE = (("batch_seconds", "train.batch_seconds"), ("max_batch_size", "train.max_batch_size"))
BATCH_ORDER = (("speed_factors", "augment.speed_factors"), ("sortagrad", "train.sortagrad"), ("seed", "train.seed"))


def epoch_starts(sampler, counts: list[int]) -> list[int]:
    """The step each epoch of ``counts`` (its batches: asr.batching.BucketBatchSampler.batch_counts)
    starts at in each of ``sampler``'s processes, and after them the step they end at."""
    return [0, *itertools.accumulate(sampler.steps(n) for n in counts)]


def resume_point(state: dict, scheduler, schedule, sampler, saved, say, counts: list[int],
                 max_duration: tuple[float, float] | None = None) -> tuple[float, int, int]:
    """Load ``state``'s learning-rate schedule into ``scheduler`` (a LambdaLR of ``schedule``, an
    asr.schedule.WarmupCosine) and find where the resumed run goes on: (the factor that turns the
    state's steps into steps now, the step it goes on from, the batches of its epoch that this
    process skips). ``sampler``: this run's asr.batching.BucketBatchSampler, ``counts`` its
    batch_counts of the first epochs (more are counted as needed); ``saved``: one with the settings
    and processes of the run that saved ``state`` (its last/config.yaml), on today's utterances;
    ``max_duration``: (the saved run's train.max_duration, this run's).

    Another number of processes, batch size or train.max_duration makes another number of steps,
    so training is measured in epochs instead: the schedule is rescaled by ``factor`` (the steps of
    the saved run's planned epochs, now over then), the position kept at the same fraction of the
    epoch (``_position``), and the step is that of the position (``_step_of``). An exact resume keeps
    the saved step and says nothing; else one line says what changed."""
    scheduler.load_state_dict(state["scheduler"])  # the schedule's own plan, in the saved run's steps
    saved, rebuilt = _saved_run(state, saved, max_duration)
    kept = state.get("batch_counts") or []  # the saved run's own (a state from before they were kept: none)
    planned = state.get("planned_epochs") or max(state["epoch"], 1)  # the epochs the saved schedule spans
    need = max(planned, state["epoch"])
    now = epoch_starts(sampler, counts + sampler.batch_counts(need, start=len(counts)))
    then = _epoch_starts_then(state, saved, kept, need, rebuilt)
    factor = now[planned] / max(1, then[planned])
    skip, at, where = _position(state, sampler, saved, kept, rebuilt)
    size, order = _changes(saved, sampler, BATCH_SIZE), _changes(saved, sampler, BATCH_ORDER)
    utterances = not rebuilt or saved.durations != sampler.durations
    processes = state["world_size"] != sampler.world_size
    if factor == 1 and not (processes or where or size or order or utterances):
        return factor, state["step"], skip  # exact: the step as saved, whatever its counts would make it
    step = _step_of(state, now, then, factor, skip, at, own=len(kept) >= need or rebuilt)
    if factor == 1 and not where and not size and not utterances:
        return factor, step, skip  # another number of processes that makes the same steps
    what = _what_changed(state["world_size"], sampler.world_size, size, order, utterances, max_duration)
    rescaled = "nothing to rescale"
    if factor != 1:
        warmup = schedule.warmup_steps
        schedule.rescale(factor)
        rescaled = (f"step {state['step']} goes on as step {step}, the learning-rate schedule rescaled to the "
                    f"same point of training (warmup {warmup:g} -> {schedule.warmup_steps:g} steps)")
    say(f"resuming with {' and '.join(what)}: {now[planned]} steps in {planned} epoch(s), {then[planned]} before: "
        f"{rescaled}{where}")
    return factor, step, skip


def _epoch_starts_then(state: dict, saved, kept: list[int], need: int, rebuilt: bool) -> list[int]:
    """The step each of the saved run's first ``need`` epochs started at, and where they end: by its
    own batch counts (``kept``), or those ``saved`` makes; an older state on utterances not known
    here: its first epoch's steps each epoch, as it planned."""
    if len(kept) >= need or rebuilt or not state.get("steps_per_epoch"):
        return epoch_starts(saved, kept[:need] if len(kept) >= need else saved.batch_counts(need))
    return [e * state["steps_per_epoch"] for e in range(need + 1)]


def _position(state: dict, sampler, saved, kept: list[int], rebuilt: bool) -> tuple[int, float, str]:
    """Where in its epoch the resumed run goes on: (the batches this process skips, the position in
    today's steps, of which they are the whole ones, and a note for the log where the batches differ,
    else ""). The same batches (another number of processes only): the same batch, rounded down to
    whole steps. Other batches: the same fraction of them, whose utterances are not the saved run's
    (until the epoch ends some may come twice and others not at all)."""
    epoch, position, world_size = state["epoch"], state["global_batch_in_epoch"], sampler.world_size
    skip, at = position // world_size, position / world_size  # global batches: any world size
    if not position:
        return skip, at, ""
    batches_now, batches_then = sampler.global_batches(epoch), saved.global_batches(epoch)
    if rebuilt and batches_now == batches_then:
        return skip, at, ""
    # the saved run's epoch: as kept, where its batches cannot be rebuilt (a state from before it was
    # kept: the saved settings on today's utterances, an estimate)
    n_now, n_then = len(batches_now), len(batches_then)
    if not rebuilt:
        n_then = (kept[epoch] if len(kept) > epoch else state.get("epoch_batches")) or n_then
    share = min(1.0, position / n_then) * n_now  # the batches of today's the position is worth
    skip = round(share) // world_size
    return skip, share / world_size, (
        f"; epoch {epoch + 1} goes on after {skip * world_size} of its {n_now} batches, the same fraction as "
        f"{position} of {n_then} before (other batches: until it ends, some of its utterances may come twice "
        "and others not at all)")


def _step_of(state: dict, now: list[int], then: list[int], factor: float, skip: int, at: float, own: bool) -> int:
    """The step of the resumed position: the steps of the epochs before it now, plus the batches
    skipped, less the steps the saved run did not take (batches of unreadable audio; known where its
    ``own`` counts tell, not from an estimate), in today's steps as its schedule's (else the rate
    jumps): the step nearest its point (``skip`` is rounded), ending as short of the schedule's end as
    the saved run would have."""
    epoch = state["epoch"]
    position_then = then[epoch] + state["global_batch_in_epoch"] // state["world_size"]
    not_taken = max(0, position_then - state["step"]) if own else 0
    untaken = max(0, round(not_taken * factor - (at - skip))) if not_taken else 0
    return max(0, now[epoch] + skip - untaken)


def _what_changed(world_then: int, world_now: int, size: list[str], order: list[str], utterances: bool,
                  max_duration: tuple[float, float] | None) -> list[str]:
    """What a resumed run's log line names as changed since the saved run."""
    what = [f"{world_then} -> {world_now} process(es)"] if world_then != world_now else []
    if size:
        what.append(f"another batch size ({', '.join(size)})")
    if utterances:
        then_limit, now_limit = max_duration or (None, None)
        what.append("other utterances (" + (f"train.max_duration {then_limit:g} -> {now_limit:g}"
                                            if then_limit != now_limit else "their audio changed since") + ")")
    if order or not what:  # none named: the batches differ for a reason not known here
        what.append(f"other batches ({', '.join(order) or 'from the same settings'})")
    return what


def durations_id(durations: list[float]) -> str:
    """What tells a training set's utterance durations apart (kept in the train state: whether a
    resumed run's batches can be rebuilt)."""
    return hashlib.sha1(repr([float(d) for d in durations]).encode()).hexdigest()


def _saved_run(state: dict, saved, max_duration: tuple[float, float] | None):
    """``saved`` (a sampler on today's utterances) on the utterances of the run that saved ``state``,
    and whether those are known: today's, less any over a lower train.max_duration then
    (``max_duration``: then, now). Those that a lower one now leaves out are not known here; nor
    are others, should the audio have changed since (the state's ``durations_id`` tells). A state
    from before that was kept: today's, unless train.max_duration is lower now."""
    then, now = max_duration or (math.inf, math.inf)
    if then < now:
        saved = copy.copy(saved)
        saved.durations = [d for d in saved.durations if d <= then]  # as load_split keeps them
    kept = state.get("durations_id")
    return saved, (durations_id(saved.durations) == kept if kept else then <= now)


def _changes(saved, sampler, names) -> list[str]:
    """``names``' settings that differ between two samplers, as 'name old -> new'."""
    def shown(value) -> str:
        return f"{value:g}" if isinstance(value, float) else str(list(value) if isinstance(value, tuple) else value)

    return [f"{name} {shown(getattr(saved, key))} -> {shown(getattr(sampler, key))}"
            for key, name in names if getattr(saved, key) != getattr(sampler, key)]


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
