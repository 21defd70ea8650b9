"""The ``asr`` command: thin wrappers that parse arguments, call the library and print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _err(message: str) -> None:
    print(f"asr: {message}", file=sys.stderr, flush=True)


def cmd_prepare(args) -> int:
    from asr.corpora import import_kaldi_dir, prepare_speechocean762
    from asr.data import total_hours, write_manifest

    if args.corpus == "speechocean762":
        reports = prepare_speechocean762(args.src, args.out, valid_speakers=args.valid_speakers)
    else:
        report = import_kaldi_dir(args.src, root=args.root)
        write_manifest(args.out, report.utterances)
        reports = {Path(args.out).stem: report}
    for split, report in reports.items():
        for utt_id, reason in report.skipped:
            _err(f"skipped {split} {utt_id}: {reason}")
        print(f"{split}: {len(report.utterances)} utterances, {total_hours(report.utterances):.2f} h, "
              f"{len(report.skipped)} skipped")
    return 0


def cmd_train(args) -> int:
    from asr.config import load_config
    from asr.train import train

    cfg = load_config(args.config, args.overrides)  # fail here, before any process starts
    if args.gpus > 1:
        from asr.distributed import launch

        return launch(args.gpus, [args.config, *args.overrides] + (["--resume"] if args.resume else []))
    run_dir = train(cfg, resume=args.resume)
    print(f"best model: {run_dir / 'best'}")
    return 0


def cmd_evaluate(args) -> int:
    from asr.data import read_manifest
    from asr.evaluate import evaluate
    from asr.transcribe import load_model

    utterances = read_manifest(args.manifest)
    transcriber = load_model(args.model, decoder=args.decoder, device=args.device)
    result = evaluate(transcriber, utterances, batch_seconds=args.batch_seconds)
    for path, reason in result.skipped:
        _err(f"skipped {path}: {reason}")
    lines = []
    for r in result.utterances:
        lines.append(f"{r.id}\tREF: {r.reference}\n{r.id}\tHYP: {r.hypothesis}")
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif not args.json:
        print("\n".join(lines))
    s = result.summary()
    print(f"WER {100 * s['wer']:.2f}% ({s['word_errors']}/{s['words']}: {s['substitutions']} sub, "
          f"{s['deletions']} del, {s['insertions']} ins)  CER {100 * s['cer']:.2f}%  "
          f"{s['utterances']} utterances, {s['audio_seconds']:.1f} s audio, RTF {s['rtf']}")
    if args.json:
        print(json.dumps(s))
    return 1 if result.skipped else 0


def cmd_transcribe(args) -> int:
    from asr.audio import AudioError
    from asr.transcribe import load_model

    transcriber = load_model(args.model, decoder=args.decoder, device=args.device)
    failed = 0
    for path in args.files:
        try:
            result = transcriber.transcribe(path)
        except AudioError as e:
            _err(str(e))
            failed += 1
            continue
        print(f"{path}\t{result.text}", flush=True)
    if failed:
        _err(f"{failed} of {len(args.files)} file(s) failed")
    return 1 if failed else 0


def cmd_export(args) -> int:
    from asr.model_dir import load_model_dir, save_model_dir

    loaded = load_model_dir(args.src)
    save_model_dir(args.dst, loaded.config, loaded.model, loaded.tokenizer, half=args.half)
    size = sum(f.stat().st_size for f in Path(args.dst).iterdir())
    print(f"{args.dst}: {loaded.model.num_parameters():,} parameters, {size / 2**20:.1f} MiB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Recurrent CTC speech recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="write JSON-lines manifests from a corpus")
    psub = p.add_subparsers(dest="corpus", required=True)
    so = psub.add_parser("speechocean762", help="the official release layout -> OUT/{train,test}.jsonl")
    so.add_argument("src")
    so.add_argument("out")
    so.add_argument("--valid-speakers", type=int, default=0,
                    help="hold out this many train speakers as OUT/valid.jsonl")
    kd = psub.add_parser("kaldi", help="any Kaldi data dir (wav.scp, text, utt2spk) -> one manifest")
    kd.add_argument("src", metavar="DATA_DIR")
    kd.add_argument("out", metavar="OUT.jsonl")
    kd.add_argument("--root", help="folder that relative wav.scp paths start from (default: DATA_DIR/..)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model: asr train CONFIG.yaml [section.key=value ...]")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="e.g. train.lr=1e-3 model.cell=gru")
    p.add_argument("--resume", action="store_true", help="continue the run in train.output_dir")
    p.add_argument("--gpus", type=int, default=1,
                   help="data-parallel processes on this machine (torchrun; gloo on CPU, nccl on GPU)")
    p.set_defaults(func=cmd_train)

    def model_args(p):
        p.add_argument("--model", help="model directory (default: the packaged model)")
        p.add_argument("--decoder", default="greedy", choices=["greedy"])
        p.add_argument("--device", default="auto", help="cpu, cuda or auto")

    p = sub.add_parser("evaluate", help="WER/CER of a model on a manifest")
    p.add_argument("manifest")
    model_args(p)
    p.add_argument("--json", action="store_true", help="end stdout with one JSON summary line")
    p.add_argument("--output", "-o", help="write per-utterance REF/HYP lines here instead of stdout")
    p.add_argument("--batch-seconds", type=float, default=300.0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("transcribe", help="print path<TAB>text for each audio file")
    p.add_argument("files", nargs="+")
    model_args(p)
    p.set_defaults(func=cmd_transcribe)
    p = sub.add_parser("export", help="copy a model directory, optionally with float16 weights")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from asr.config import ConfigError
    from asr.corpora import CorpusError
    from asr.data import ManifestError
    from asr.model_dir import ModelDirError
    from asr.train import TrainingError

    try:
        return args.func(args)
    except (ConfigError, CorpusError, ManifestError, ModelDirError, TrainingError, RuntimeError) as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
