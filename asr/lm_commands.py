"""What each ``asr lm`` subcommand does: build, mix, prune, import, score and tune word LMs (thin wrappers, as
in asr/commands.py, importing the library inside each command)."""

from __future__ import annotations

from pathlib import Path

from asr.atomic import check_writable
from asr.cli_types import check_output
from asr.cli_systems import warn_if_trained_on
from asr.commands import print_error
from asr.text import plural, time_left


def _tokenizer(args):
    """``--tokenizer``: a model directory or its tokenizer.json; None when not given."""
    if not getattr(args, "tokenizer", None):
        return None
    from asr.tokenizers import load_tokenizer

    return load_tokenizer(args.tokenizer)


def _report_skipped(skipped: list[str], tokenizer) -> None:
    """The sentences ``tokenizer`` could not spell, left out of what was built or scored."""
    from asr.lm import unspellable

    if skipped:
        print_error(f"skipped {len(skipped)} sentences with {unspellable(tokenizer)} "
                    f"(first: {', '.join(skipped[:3])})")


# KenLM (flashlight-text's decoder, build_binary) refuses a unigram LM: it "assumes at least a bigram model".
UNIGRAM_WARNING = "beam search needs an LM of order 2 or more (KenLM cannot load a unigram LM)"


def cmd_lm_build(args) -> int:
    from asr.arpa import inspect_lm
    from asr.lm import KENLM_MAX_ORDER, build_lm

    if args.order > KENLM_MAX_ORDER:
        print_error(f"warning: beam search loads LMs up to order {KENLM_MAX_ORDER} (flashlight-text's KenLM)")
    if args.order < 2:
        print_error(f"warning: {UNIGRAM_WARNING}; give --order 2 or more")
    if args.tokenizer and args.unit != "token":
        print_error("warning: --tokenizer is used only with --unit token")
    check_output(args.output, args.texts)  # before the text is read and counted
    skipped: list[str] = []
    notes: list[str] = []
    tokenizer = _tokenizer(args)
    path, tool = build_lm(args.texts, args.output, order=args.order, unit=args.unit, tokenizer=tokenizer,
                          skipped=skipped, notes=notes)
    _report_skipped(skipped, tokenizer)
    for note in notes:
        print_error(note)
    info = inspect_lm(path)
    counts = ", ".join(f"{n}-grams {c}" for n, c in enumerate(info.counts, 1))
    print(f"{path}: {info.order}-gram {args.unit} LM ({tool}): {counts}")
    return 0


def cmd_lm_mix(args) -> int:
    from asr.lm_mix import mix_files

    weights = args.weights or None
    check_output(args.output, args.dev or [])  # an LM mixed into one of its inputs is the same kind of file
    if args.tokenizer and not args.dev:
        print_error("warning: --tokenizer is used only with --dev")
    skipped: list[str] = []
    tokenizer = _tokenizer(args)
    path, used = mix_files(args.lms, args.output, weights=weights, dev=args.dev or (), tokenizer=tokenizer,
                           skipped=skipped)
    _report_skipped(skipped, tokenizer)
    how = "fitted on " + ", ".join(args.dev) if args.dev and not weights else "given" if weights else "equal"
    print(f"{path}: weights {', '.join(f'{w:.3f}' for w in used)} ({how})")
    return 0


def cmd_lm_prune(args) -> int:
    from asr.lm_prune import prune_file

    check_writable(args.output)  # in place too: the same kind of file, replaced whole once written
    result = prune_file(args.lm, args.output, args.threshold)
    counts = ", ".join(f"{n}-grams {b} -> {a}" for n, (b, a) in enumerate(zip(result.before, result.after), 1))
    print(f"{args.output}: pruned at {args.threshold:g}: {counts}")
    if len(result.before) == 1:
        print_error(f"warning: {args.lm} is a unigram LM: pruning keeps every unigram, so there was nothing to prune; "
                    f"{UNIGRAM_WARNING}")
    elif not any(result.after[1:]):
        print_error(f"warning: {args.output} has only unigrams left; {UNIGRAM_WARNING}: give a lower --threshold")
    return 0


def cmd_lm_import_sphinx(args) -> int:
    from asr.sphinx_lm import normalized_word, sphinx_to_arpa

    dropped: list[str] = []
    notes: list[str] = []
    check_output(args.output, [args.lm])
    counts = sphinx_to_arpa(args.lm, args.output, word_filter=None if args.keep_all_words else normalized_word,
                            dropped=dropped, notes=notes)
    for note in notes:
        print_error(note)
    grams = ", ".join(f"{n}-grams {c}" for n, c in counts.items())
    kept = "all words kept" if args.keep_all_words else (
        f"{len(dropped)} words not in normalized form dropped with their n-grams"
        + (f" (e.g. {', '.join(dropped[:5])}), probabilities renormalized" if dropped else ""))
    print(f"{args.output}: {len(counts)}-gram word LM from {args.lm}: {grams}; {kept}")
    return 0


def cmd_lm_rnn(args) -> int:
    from asr.rnnlm import RNNLMOptions, train_rnnlm

    if any(r != int(r) or r < 1 for r in args.repeat or []):
        print_error("--repeat takes whole numbers of at least 1")
        return 2
    if args.dev:  # refused before the training text is read, with the reader's own message
        from asr.lm_mix import read_scored_text

        read_scored_text(args.dev, "word", what="dev text")
    check_output(args.output, [*args.texts, *(args.dev or [])], directory=True)  # the LM is staged beside it
    repeats = [int(r) for r in args.repeat or []]
    given = {k: getattr(args, k) for k in ("hidden_size", "num_layers", "dropout", "epochs", "seed", "lr",
                                           "checks_per_epoch", "halvings", "min_count")}
    options = RNNLMOptions(**{k: v for k, v in given.items() if v is not None})
    model = train_rnnlm(args.texts, args.output, repeats, args.dev or (), options, log=print_error, force=args.force)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.output}: LSTM word LM, {len(model.words)} words, {params / 1e6:.2f} M parameters")
    return 0


def _perplexity(lm, sentences: list[list[str]]) -> tuple[float, int, int]:
    """``asr.lm_mix.perplexity`` of the ARPA file ``lm``; every error names the file."""
    from asr.arpa import ArpaModel
    from asr.lm import LMError
    from asr.lm_mix import perplexity

    model = ArpaModel(lm)  # its errors name the file and line
    try:
        return perplexity(model, sentences)
    except LMError as e:
        raise LMError(f"{lm}: {e}") from None


def cmd_lm_perplexity(args) -> int:
    from asr.lm import LMError
    from asr.lm_mix import arpa_info, read_scored_text, text_unit

    tokenizer = _tokenizer(args)
    units = [text_unit(arpa_info(lm), tokenizer) for lm in args.lms]  # all checked before any is scored
    texts: dict[str, list[list[str]]] = {}  # per unit: a character LM's text is read as characters
    for unit in units:
        if unit not in texts:
            skipped: list[str] = []
            texts[unit] = read_scored_text(args.texts, unit, tokenizer, skipped)
            _report_skipped(skipped, tokenizer)
    failed = 0
    for lm, unit in zip(args.lms, units):
        sentences = texts[unit]
        try:
            ppl, scored, oov = _perplexity(lm, sentences)
        except LMError as e:  # the other LMs are still scored
            print_error(str(e))
            failed += 1
            continue
        print(f"{lm}: perplexity {ppl:.1f} on {scored} tokens ({plural(len(sentences), 'sentence')}), "
              f"{oov} OOV ({100 * oov / (scored + oov):.2f}%)")
    return 1 if failed else 0


def _point_line(told) -> str:
    """``[12/840, ~20 min left] lm_weight 1.5 word_score -1 blank_penalty 0: WER 52.30%``: where a long
    grid is and when it will end (``asr.tuning.PointScore``)."""
    left = told.seconds_left
    when = "" if left is None or told.number == told.points else f", {time_left(left)}"
    return (f"[{told.number}/{told.points}{when}] lm_weight {told.lm_weight:g} word_score {told.word_score:g} "
            f"blank_penalty {told.blank_penalty:g}" + (f" prior_scale {told.prior_scale:g}" if told.prior_scale else "")
            + f": WER {100 * told.wer:.2f}%")


def cmd_lm_tune(args) -> int:
    from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
    from asr.data import read_manifest
    from asr.decoding_config import DECODING_FILE, log_priors_for, packaged_lexicon_for
    from asr.transcribe import load_model
    from asr.tuning import store, tune

    if Path(args.manifest).stem.startswith("test"):
        print_error(f"warning: {args.manifest} looks like a test split; tune on a dev split, or its WER means little")
    warn_if_trained_on([args.model], args.manifest)
    if not args.dry_run:
        check_writable(Path(args.model) / DECODING_FILE)  # before the grid, not after it
    utterances = read_manifest(args.manifest)
    if not utterances:  # before the model loads (as evaluate says it)
        print_error(f"{args.manifest}: no utterances to tune on")
        return 2
    transcriber = load_model(args.model, decoder="greedy", device=args.device)
    given = {"beam_size": args.beam_size, "beam_size_token": args.beam_size_token,
             "beam_threshold": args.beam_threshold}  # None: not given, BeamSearchOptions' default
    log_priors = log_priors_for(args.model, len(transcriber.tokenizer), args.prior_scales,
                                transcriber.tokenizer.tokens)
    # the package's own LM searches with its own lexicon, as it will after tuning
    lexicon = args.lexicon if args.lexicon is not None else packaged_lexicon_for(args.model, args.lm)
    decoder = BeamSearchDecoder(transcriber.tokenizer, lm=args.lm, lexicon=lexicon,
                                options=BeamSearchOptions(**{k: v for k, v in given.items() if v is not None}),
                                workers=args.decode_workers, log_priors=log_priors)
    for note in decoder.notes:
        print_error(note)
    result = tune(transcriber, decoder, utterances, args.lm_weights, args.word_scores, args.blank_penalties,
                  batch_seconds=args.batch_seconds, prior_scales=args.prior_scales,
                  keep_in=None if args.dry_run else args.model, files=[args.lm, lexicon],  # a cut run resumes
                  progress=lambda told: print_error(_point_line(told)))
    for path, reason in result.skipped:
        print_error(f"skipped {path}: {reason}")
    if result.skipped:  # tuned on the rest, and stored: a recipe goes on to evaluate with it (exit 0)
        print_error(f"{len(result.skipped)} of {len(utterances)} utterances skipped")
    print(f"best: lm_weight {result.lm_weight:g} word_score {result.word_score:g} blank_penalty "
          f"{result.blank_penalty:g} prior_scale {result.prior_scale:g}: WER {100 * result.wer:.2f}% "
          f"(greedy {100 * result.greedy_wer:.2f}%) on {plural(result.utterances, 'utterance')}, "
          f"{result.seconds:.0f} s")
    if not args.dry_run:
        print(f"stored in {store(args.model, result, decoder, args.lm, lexicon, args.manifest)}")
    return 0


def cmd_priors(args) -> int:
    from asr.data import ManifestError, read_manifest
    from asr.decoding_config import PRIORS_FILE
    from asr.priors import estimate_priors, save_priors, systems_left_out
    from asr.transcribe import load_model

    if Path(args.manifest).stem.startswith("test"):
        print_error(f"warning: {args.manifest} looks like a test split; estimate priors on training audio")
    if args.every < 1:
        print_error(f"--every must be at least 1, got {args.every}")
        return 2
    check_writable(Path(args.model) / PRIORS_FILE)  # before the model runs over the manifest
    utterances = read_manifest(args.manifest)[:: args.every]
    if not utterances:
        print_error(f"{args.manifest}: no utterances to estimate token priors from")
        return 2
    transcriber = load_model(args.model, decoder="greedy", device=args.device)
    try:
        estimate = estimate_priors(transcriber, utterances, args.batch_seconds)
    except ManifestError as e:  # nothing to estimate from: say which manifest
        raise ManifestError(f"{args.manifest}: {e}") from None
    for path, reason in estimate.skipped:
        print_error(f"skipped {path}: {reason}")
    tokens, priors = transcriber.tokenizer.tokens, estimate.priors
    top = sorted(range(len(priors)), key=priors.__getitem__, reverse=True)[:5]
    print(f"{save_priors(args.model, priors, estimate.frames, args.manifest, tokens)}: {len(priors)} tokens over "
          f"{estimate.frames:,} frames of {plural(estimate.used, 'utterance')}; most likely: "
          + ", ".join(f"{tokens[k]} {priors[k]:.3f}" for k in top))
    if others := systems_left_out(args.model):  # rescoring divides out theirs too: say they were not redone
        print_error(f"note: {args.model} rescores with {len(others) + 1} systems: only its first system's priors "
                    "were estimated; the others keep theirs (" + "; ".join(
                        f"asr priors {m} {args.manifest}" for m in others) + " to redo them)")
    return 0
