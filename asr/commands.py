"""What each ``asr`` subcommand does: thin wrappers that call the library and print.

asr/cli.py parses the arguments and hands them here. Library modules are imported inside each
command, so a command loads only what it uses (torch alone costs seconds).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from asr.cli_systems import (as_packaged, combined_outcomes, load_transcriber, print_error, systems_from,
                             warn_if_trained_on)
from asr.cli_types import check_output
from asr.text import plural


def cmd_train(args) -> int:
    from asr.atomic import check_writable
    from asr.config_files import load_config
    from asr.train import train
    from asr.train_checks import check_trainable

    cfg = load_config(args.config, args.overrides, resume=args.resume)  # fail here, before any process starts
    check_trainable(cfg, args.resume)
    # a run writes inside its directory (config.yaml, log.jsonl, last/ staged there): probed there,
    # or where it will be made
    check_writable(Path(cfg.train.output_dir) / "config.yaml")
    run_dir = Path(cfg.train.output_dir)
    if args.check:  # (the recipes ask first, before they move a finished run aside for a new one)
        print(f"{args.config}: the config and its overrides can train into {run_dir}")
        return 0
    if args.gpus > 1:
        from asr.distributed import launch

        if status := launch(args.gpus, [args.config, *args.overrides] + (["--resume"] if args.resume else [])):
            return status
    else:
        train(cfg, resume=args.resume)
    if (run_dir / "best").is_dir():
        print(f"best model: {run_dir / 'best'}")
        return 0
    # validation scored no epoch (see the log): the weights are there, but nothing chose them
    last = f"; the last checkpoint is {run_dir / 'last'}" if (run_dir / "last").is_dir() else ""
    print_error(f"{run_dir}: no best model was saved: validation could not score any epoch{last}")
    return 1


def cmd_evaluate(args) -> int:
    from asr.atomic import write_text_atomic
    from asr.data import read_manifest
    from asr.evaluate import evaluate, merged_skips, unwritable_note, utterance_id
    from asr.user_warnings import listed

    if args.output:
        check_output(args.output, [args.manifest])  # before a long evaluation, not after it
    if args.report:
        from asr.report import ReportError, check_report_dir

        written = {Path(args.report, name).resolve() for name in ("", "results.json", "report.md", "report.html")}
        if args.output and Path(args.output).resolve() in written:  # one would replace the other, after decoding
            print_error(f"-o {args.output} is where --report {args.report} writes its report: give another file")
            return 2
        try:
            check_report_dir(args.report, args.force)  # before a long evaluation, not after it
        except ReportError as e:
            print_error(str(e))
            return 2
    utterances = read_manifest(args.manifest)
    if not utterances:
        raise RuntimeError(f"{args.manifest}: no utterances to evaluate")
    ids = Counter(utterance_id(u) for u in utterances)
    if (repeated := [i for i, n in ids.items() if n > 1]):  # scored all the same; asr compare matches by id
        print_error(f"warning: {args.manifest}: {len(repeated)} utterance id(s) occur more than once "
                    f"(e.g. {repeated[0]!r}): reports of it cannot be compared or combined")
    systems = systems_from(args)  # LM/lexicon errors surface here, before any audio
    results = [evaluate(t, utterances, batch_seconds=args.batch_seconds) for t in systems]
    skipped = [f"skipped {path}: {why}" for path, why in merged_skips(results)]
    if skipped:
        # a few and a total, as training's checks: a wrong audio folder would list the whole corpus
        listed(skipped, f"{len(skipped)} of {plural(len(utterances), 'utterance')} skipped (unreadable audio, or a "
                        "failed search): not scored", print_error)
    if not all(r.utterances for r in results):  # a WER of 0/0 words would read as a perfect score
        print_error(f"{args.manifest}: none of its {len(utterances)} utterances could be read and decoded: nothing "
                    "scored" + (", no report written" if args.report else ""))
        return 1
    result, described = results[0], systems[0].describe()
    if len(systems) > 1:
        from asr.rover import combine_evaluations, shared_rates

        # over the utterances voted on: a system whose search failed on a batch scored fewer
        for name, t, (wer, cer) in zip([args.model or "packaged default", *args.combine], systems,
                                       shared_rates(results)):
            print_error(f"{name}: WER {100 * wer:.2f}%  CER {100 * cer:.2f}% ({t.describe()})")
        result = combine_evaluations(results)
        if not result.utterances:  # the systems failed different utterances: a vote over none reads as 0% WER
            print_error(f"{args.manifest}: no utterance was decoded by all {len(systems)} systems: nothing to vote "
                        "on, nothing scored" + (", no report written" if args.report else ""))
            return 1
        described = f"ROVER of {len(systems)} systems (--model, then --combine in order)"
    lines = []
    for r in result.utterances:
        lines.append(f"{r.id}\tREF: {r.reference}\n{r.id}\tHYP: {r.hypothesis}")
    if args.output:
        write_text_atomic(args.output, "\n".join(lines) + "\n")
    elif not args.json:
        print("\n".join(lines))
    s = {**result.summary(), "decoder": described}
    if note := unwritable_note(args.manifest, systems[0].tokenizer, [r.reference for r in result.utterances]):
        print_error(note)
    if not s["words"]:  # the WER below is then 1 for any word said (ErrorCounts.rate's convention)
        print_error(f"warning: {args.manifest}: the references have no words after normalization, so no error "
                    f"rate can be given ({s['insertions']} hypothesis word(s), all insertions)")
    print(f"WER {100 * s['wer']:.2f}% ({s['word_errors']}/{s['words']}: {s['substitutions']} sub, "
          f"{s['deletions']} del, {s['insertions']} ins)  CER {100 * s['cer']:.2f}%  "
          f"{plural(s['utterances'], 'utterance')}, {s['audio_seconds']:.1f} s audio, RTF {s['rtf']}"
          + (f" (less {s['retry_seconds']:g} s of searches a killed worker broke off, {s['retried_batches']} "
             f"batch{'es' if s['retried_batches'] != 1 else ''} searched again)" if s["retry_seconds"] else "")
          + f"; {s['decoder']}")
    if args.json:
        print(json.dumps(s))
    if args.report:
        import time

        from asr.report import build_report, write_report

        models = [f"--rescoring {args.rescoring}"] if args.rescoring else [args.model or "packaged default",
                                                                            *(args.combine or [])]
        meta = {"model": ", ".join(models),
                "manifest": args.manifest, "decoder": described,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "skipped": result.skipped,
                **({"cut short": len(result.truncated)} if result.truncated else {}),
                **({"retried batches": s["retried_batches"], "retry seconds": s["retry_seconds"]}
                   if s["retried_batches"] else {})}
        write_report(build_report(result.utterances, meta), args.report, force=True)  # checked above
        print_error(f"report written to {args.report}/ (report.md, report.html, results.json)")
    return 1 if result.skipped else 0


def cmd_tune_rescoring(args) -> int:
    from asr.data import read_manifest
    from asr.rescoring import (DEFAULT_LM_WEIGHTS, DEFAULT_WEIGHTS, DEFAULT_WORD_SCORES, NothingToTune,
                               RescoringOptions, RescoringTranscriber, tune)
    from asr.rescoring_files import write_rescoring

    if not args.combine and not args.rnnlm:
        print_error("tune-rescoring needs other systems (--combine) or an RNN LM (--rnnlm), or both")
        return 2
    if args.weights and min(args.weights) < 0:  # a system that cannot spell a candidate scores -inf: x -1 = +inf
        print_error(f"--weights are each system's share of the score: at least 0, got {min(args.weights):g}")
        return 2
    check_output(args.output, [args.manifest])  # before the systems search, not after
    utterances = read_manifest(args.manifest)
    if not utterances:  # before the systems load
        print_error(f"{args.manifest}: no utterances to tune on")
        return 2
    models = [args.model, *args.combine]
    warn_if_trained_on(models, args.manifest)
    args.decoder = "auto"
    systems = [load_transcriber(as_packaged(args, m), rescore=False) for m in models]
    options = RescoringOptions((1.0,) * len(systems), nbest=args.nbest, rnnlm=args.rnnlm)  # tune picks its share
    combined = RescoringTranscriber(systems, options)
    try:
        result = tune(combined, utterances, weights=args.weights or DEFAULT_WEIGHTS,
                      lm_weights=args.lm_weights or DEFAULT_LM_WEIGHTS,
                      word_scores=args.word_scores or DEFAULT_WORD_SCORES,
                      batch_seconds=args.batch_seconds, prior_scales=args.prior_scales or [0.0])
    except NothingToTune as e:  # which manifest
        raise NothingToTune(f"{args.manifest}: {e}") from None
    for path, reason in result.skipped:
        print_error(f"skipped {path}: {reason}")
    if result.skipped:  # tuned on the rest, and stored, as `asr lm tune` does (exit 0)
        print_error(f"{len(result.skipped)} of {len(utterances)} utterances skipped")
    path = write_rescoring(args.output, models, result, args.manifest)
    o = result.options
    if result.perplexities:
        table = ", ".join(f"{lam:g}: {ppl:.1f}" for lam, ppl in result.perplexities.items() if lam in (0, 0.5, 1)
                          or lam == o.rnnlm_lambda)
        print(f"RNN LM share {o.rnnlm_lambda:g}, chosen by perplexity on {args.manifest} ({table})")
    print(f"{args.manifest}: WER {100 * result.wer:.2f}% rescored ({args.model} alone: {100 * result.first_wer:.2f}%), "
          f"{plural(result.utterances, 'utterance')}, {plural(len(result.grid), 'setting')} in "
          f"{result.seconds:.0f} s; weights "
          f"{', '.join(f'{w:g}' for w in o.weights)}, lm_weight {o.lm_weight:g}, word_score {o.word_score:g}"
          + (f", prior_scale {o.prior_scale:g}" if o.prior_scale else "") + f" -> {path}")
    print(f"oracle: the best of each utterance's {result.candidates_per_utterance:.1f} candidates (on average; "
          f"a cut one's per piece) gives WER {100 * result.oracle_wer:.2f}%, the floor for any weights")
    return 0


def cmd_transcribe(args) -> int:
    from asr.inputs import duration_of, expand_inputs, is_stream, needs_ffmpeg
    from asr.writers import WRITERS, DirectoryOutput, OutputError, get_writer

    formats = list(WRITERS) if args.format == "all" else [args.format]
    if args.output_dir:
        try:
            output = DirectoryOutput(args.output_dir, formats)  # before the model and any audio
        except OutputError as e:
            print_error(str(e))
            return 2
    elif args.format == "all":
        print_error("--format all writes several files per input: give --output-dir")
        return 2
    else:
        output = get_writer(args.format, sys.stdout)
    paths, input_errors = expand_inputs(args.files)
    for message in input_errors:
        print_error(message)
    if isinstance(output, DirectoryOutput) and (problems := output.guard(paths, args.force)):
        for problem in problems[:5]:  # before any model loads or audio is read
            print_error(problem)
        if len(problems) > 5:
            print_error(f"... {len(problems) - 5} more")
        return 2
    if not paths:  # every input was refused above: no model need load
        print_error(f"{len(input_errors)} of {len(input_errors)} file(s) failed")
        return 1
    if (twice := [p for p, n in Counter(paths).items() if n > 1 and is_stream(p)]):  # a second read would wait
        print_error(f"{twice[0]}: {'stdin' if twice[0] == '-' else 'a pipe'} can be read only once")
        return 2
    if not args.output_dir and args.format in ("srt", "vtt", "tsv") and len(paths) > 1:
        print_error(f"--format {args.format} is one file per input: give --output-dir for {len(paths)} inputs")
        return 2
    if args.combine and args.nbest:  # before any model loads: the vote would drop them silently
        print_error("--nbest with --combine: a ROVER vote gives one transcript, with no alternatives; n-best across "
                    "models is --rescoring (asr tune-rescoring)")
        return 2
    if (args.combine or args.rescoring) and (streams := [p for p in paths if is_stream(p)]):
        print_error(f"{streams[0]}: a pipe can be read only once, so not with --combine or --rescoring")
        return 2
    systems = systems_from(args)  # every model loads (or fails) before any audio is read
    for transcriber in systems:
        transcriber.batch_size = args.batch_size
    _warn_of_narrowband(paths, systems[0].sample_rate)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        # seconds of audio; unknown (stdin, ffmpeg) -> no total; unreadable files count 0
        seconds = [duration_of(p) for p in paths]
        total = None if any(is_stream(p) or needs_ffmpeg(p) for p in paths) else sum(s or 0 for s in seconds)
        total = total * len(systems) if total else None
        bar = tqdm(total=round(total, 1) if total else None, unit="s", desc="audio", file=sys.stderr,
                   dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]"
                   if total else None)
    failed = len(input_errors)
    progress = None if bar is None else bar.update
    note = print_error if bar is None else (lambda line: bar.write(f"asr: {line}", file=sys.stderr))
    if len(systems) == 1:
        outcomes = systems[0].transcribe_files(paths, progress=progress, note=note)  # each file once done
    else:
        outcomes = combined_outcomes(systems, paths, progress, note)
    for path, outcome in outcomes:
        if isinstance(outcome, Exception):
            if bar is not None:
                bar.write(f"asr: {outcome}", file=sys.stderr)
            else:
                print_error(str(outcome))
            failed += 1
        else:
            try:
                output.write(path, outcome)
            except OutputError as e:
                note(str(e))
                failed += 1
    if bar is not None:
        bar.close()
    output.close()
    for path, name in getattr(output, "renamed", []):
        print_error(f"{path}: written as {name}.* (other inputs are named {Path(path).stem} too)")
    if failed:
        print_error(f"{failed} of {len(paths) + len(input_errors)} file(s) failed")
    return 1 if failed else 0


def _warn_of_narrowband(paths: list[str], rate: int, shown: int = 3) -> None:
    """Name the files recorded below the model's rate (telephone audio at 8 kHz): they are
    transcribed, upsampled, but the band above their Nyquist frequency, which the model heard in
    training, is silent there. From the headers only; unreadable files get their error later."""
    from asr.audio import AudioError, audio_info

    low = []
    for path in paths:
        try:
            if path != "-" and (r := audio_info(path).sample_rate) < rate:
                low.append(f"{path} ({r} Hz)")
        except AudioError:
            pass
    if low:
        more = f" and {len(low) - shown} more" if len(low) > shown else ""
        print_error(f"warning: {', '.join(low[:shown])}{more}: recorded below the model's {rate} Hz; upsampling "
                    "cannot restore the missing band, so expect more errors")


def cmd_compare(args) -> int:
    from asr.compare import compare_reports, render_comparison
    from asr.report import ReportError

    try:
        print(render_comparison(compare_reports(args.report_a, args.report_b), limit=args.limit))
    except ReportError as e:
        print_error(str(e))
        return 2
    return 0


def cmd_combine(args) -> int:
    from asr.report import Report, ReportError, check_report_dir, load_report, write_report
    from asr.rover import combine_reports

    check_output(args.output, args.reports, directory=True)  # --force replaces a report, not an input
    try:
        check_report_dir(args.output, args.force)
        reports = [load_report(d) for d in args.reports]
        combined, notes = combine_reports(reports, args.reports, args.weights)
        voted = [u.id for u in combined.utterances]  # each system over these, as the combined rates are
        for d, report in zip(args.reports, reports):
            ids = report.by_id(d)
            s = Report([ids[i] for i in voted], report.meta).summary()
            print(f"{d}: WER {100 * s['wer']:.2f}%  CER {100 * s['cer']:.2f}%")
        write_report(combined, args.output, force=True)
    except ReportError as e:
        print_error(str(e))
        return 2
    for note in notes:
        print_error(note)
    s = combined.summary()
    print(f"combined: WER {100 * s['wer']:.2f}% ({s['word_errors']}/{s['words']}: {s['substitutions']} sub, "
          f"{s['deletions']} del, {s['insertions']} ins)  CER {100 * s['cer']:.2f}%  "
          f"{plural(s['utterances'], 'utterance')}")
    print_error(f"report written to {args.output}/ (report.md, report.html, results.json)")
    return 0


def cmd_plot(args) -> int:
    from asr.audio import AudioError
    from asr.plots import PlotError, plot_alignment, plot_training

    try:
        if args.what == "training":
            out = plot_training(args.source, args.output)
        else:
            out = plot_alignment(load_transcriber(args), args.source, args.output)  # what transcribe runs
    except (AudioError, PlotError) as e:
        print_error(str(e))
        return 2
    print(out)
    return 0


def cmd_diagram(args) -> int:
    from asr.diagram_text import systems_summary_text, systems_to_draw

    if args.vocab_size and not args.config:
        raise RuntimeError("--vocab-size is for --config: a model directory has its own tokens")
    if args.command == "summary" and not args.seconds <= 600:  # (inf, nan too) the model runs on that much audio
        raise RuntimeError(f"--seconds must be at most 600, got {args.seconds}")
    # a rescoring package: all its systems, or --system N
    systems, heading = systems_to_draw(args.model, args.config, args.vocab_size, args.overrides, args.system)
    if args.command == "summary":
        print(systems_summary_text(systems, args.seconds, heading))
        return 0
    from asr.diagram import save_diagram
    from asr.plots import PlotError

    try:
        print(save_diagram(systems, args.output, heading=heading))
    except PlotError as e:
        print_error(str(e))
        return 2
    return 0
