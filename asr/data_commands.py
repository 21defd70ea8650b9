"""What ``asr prepare``, ``asr download`` and ``asr synthesize`` do: the commands that make data
(thin wrappers, as in asr/commands.py, importing the library inside each command)."""

from __future__ import annotations

from pathlib import Path

from asr.cli_systems import print_error
from asr.cli_types import check_output
from asr.text import plural


def _unused_seed(args) -> str | None:
    """Why a --seed given to ``asr prepare`` would change nothing, or None: refused, as a seed
    that changes nothing lets a user believe two runs differ."""
    if getattr(args, "seed", None) is None:
        return None
    if args.corpus == "librispeech" and args.train == []:
        return "--seed: nothing to split with --train alone (the --eval subsets only, no train set)"
    if args.valid_speakers or getattr(args, "valid_fraction", 0.0):
        return None
    ways = "--valid-speakers N or --valid-fraction F" if args.corpus == "folder" else "--valid-speakers N"
    if getattr(args, "valid_list", None):
        return f"--seed: --valid-list names the held-out set, nothing is drawn at random (that takes {ways})"
    return f"--seed: nothing is held out at random without {ways}"


def cmd_prepare(args) -> int:
    from asr import corpus_formats as cf
    from asr.corpora import check_split, import_kaldi_dir, prepare_speechocean762
    from asr.data import total_hours, write_manifest

    if why := _unused_seed(args):  # before the corpus is looked for: nothing is read for it
        raise RuntimeError(why)
    seed = args.seed if getattr(args, "seed", None) is not None else 0
    if not Path(args.src).exists():  # before any corpus's own "not a ... release"
        fetch = args.corpus in ("speechocean762", "librispeech", "an4", "commonvoice")
        raise RuntimeError(f"{args.src}: not found" + (f"; get it with: asr download {args.corpus}" if fetch else ""))
    # before the corpus is read (every audio file's header: minutes for a large one); a Kaldi
    # dir's manifest must not replace one of the files it is made from
    if args.corpus == "kaldi":
        check_output(args.out, [str(Path(args.src) / name) for name in ("wav.scp", "text", "utt2spk")])
    else:  # a folder of manifests: probed where they go
        check_output(str(Path(args.out) / "train.jsonl"))
    if args.corpus == "speechocean762":
        reports = prepare_speechocean762(args.src, args.out, valid_speakers=args.valid_speakers)
    elif args.corpus == "librispeech":
        reports = cf.prepare_librispeech(args.src, args.out, train=args.train, eval_sets=args.eval,
                                         valid_speakers=args.valid_speakers, seed=seed)
    elif args.corpus == "an4":
        reports = cf.prepare_an4(args.src, args.out, valid_speakers=args.valid_speakers, seed=seed)
    elif args.corpus == "commonvoice":
        reports = cf.prepare_commonvoice(args.src, args.out, train_tsv=args.train_tsv, language=args.language)
    elif args.corpus == "folder":
        reports = cf.prepare_own_data(args.src, args.out, test=args.test, valid_speakers=args.valid_speakers,
                                      valid_list=args.valid_list, valid_fraction=args.valid_fraction,
                                      seed=seed)
    else:
        report = import_kaldi_dir(args.src, root=args.root)
        check_split(args.src, report)  # nothing usable is an error, not an empty manifest
        write_manifest(args.out, report.utterances)
        reports = {Path(args.out).stem: report}
    for split, report in reports.items():
        for utt_id, reason in report.skipped:
            print_error(f"skipped {split} {utt_id}: {reason}")
        for note in report.notes:
            print_error(f"{split}: {note}")
        print(f"{split}: {plural(len(report.utterances), 'utterance')}, {total_hours(report.utterances):.2f} h, "
              f"{len(report.skipped)} skipped")
    return 0


def cmd_download(args) -> int:
    from asr.download import download_corpus

    where = download_corpus(args.corpus, args.data_dir, subsets=args.subsets, archive=args.archive,
                            url_base=args.url_base, remove_archive=args.remove_archive)
    print(f"{args.corpus}: ready in {where}")
    return 0


def cmd_synthesize(args) -> int:
    from asr.data import total_hours
    from asr.tts import describe_rejected, parse_voices, select_sentences, synthesize

    voices = parse_voices(args.voices)  # None: the defaults; "" is refused, not taken as the defaults
    lines = []
    for path in args.texts:  # each read before any audio is made: a bad one stops the job before it starts
        try:
            read = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise RuntimeError(f"{path}: cannot read text ({e})") from None
        if not any(line.strip() for line in read) and len(args.texts) > 1:  # alone, the error below names it
            print_error(f"warning: {path}: empty: no sentence comes from it")
        lines += read
    rejected: list[str] = []
    sentences = select_sentences(lines, args.num, args.min_words, args.max_words, seed=args.seed, voices=voices,
                                 rejected=rejected)
    left_out = f"; left out: {describe_rejected(rejected)}" if rejected else ""
    if not sentences:  # refused before anything is written: an empty manifest would pass for done
        raise RuntimeError(f"{', '.join(args.texts)}: no speakable sentences of {args.min_words}-{args.max_words} "
                           f"words{left_out}")
    if len(sentences) < args.num:
        print_error(f"warning: only {len(sentences)} speakable sentences of {args.min_words}-{args.max_words} words"
                    f"{left_out}")
    if len(args.freq_scale) != 2:
        given = ",".join(f"{x:g}" for x in args.freq_scale)
        raise RuntimeError(f"--freq-scale '{given}': expected LOW,HIGH, e.g. 1,1.3")
    utterances = synthesize(sentences, args.out, voices, seed=args.seed, freq_scale_range=tuple(args.freq_scale),
                            jobs=args.jobs, log=print_error)
    print(f"{Path(args.out) / 'train.jsonl'}: {plural(len(utterances), 'utterance')}, {total_hours(utterances):.2f} h, "
          f"{len(sentences) - len(utterances)} skipped")
    return 0
