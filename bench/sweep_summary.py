"""One line per training run: epochs done, best valid WER/CER, epoch time; the best run's name.

    python bench/sweep_summary.py RUN_DIR... [--json OUT.jsonl] [--best-file BEST.txt]

Reads each run's config.yaml and log.jsonl (a run stopped early counts the epochs it logged).
Prints a Markdown table; --json appends one JSON object per run; --best-file gets the name of
the run with the lowest valid WER (nothing is written when no run logged a valid WER).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

from asr.plots import PlotError, read_training_log


def summarize(run: Path) -> dict:
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    try:  # one record per epoch, without the averaging record
        epochs = read_training_log(run)
    except PlotError:  # no log yet, or nothing logged: a run that did not get far
        epochs = []
    row = {"run": run.name, "epochs_done": len(epochs),
           "epochs_planned": config.get("train", {}).get("epochs"),
           "model": config.get("model"), "train": {k: config.get("train", {}).get(k)
                                                 for k in ("batch_seconds", "max_batch_size", "lr")}}
    if epochs:
        seconds = [e["epoch_seconds"] for e in epochs]
        row.update(first_epoch_s=seconds[0], median_epoch_s=round(statistics.median(seconds[1:] or seconds), 1),
                   median_audio_s_per_s=round(statistics.median(e["audio_seconds_per_second"] for e in epochs[1:] or epochs), 1),
                   steps=epochs[-1]["step"], train_seconds=round(sum(seconds), 1))
    scored = [e for e in epochs if "valid_wer" in e]
    if scored:
        best = min(scored, key=lambda e: e["valid_wer"])
        row.update(best_epoch=best["epoch"], valid_wer=best["valid_wer"], valid_cer=best["valid_cer"],
                   last_valid_wer=scored[-1]["valid_wer"])
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--best-file", type=Path)
    args = p.parse_args(argv)
    rows = [summarize(run) for run in args.runs if run.is_dir()]
    print("| run | epochs | best valid WER / CER (epoch) | epoch s (first, median) | audio-s/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        score = (f"{100 * r['valid_wer']:.1f}% / {100 * r['valid_cer']:.1f}% ({r['best_epoch']})"
                 if "valid_wer" in r else "-")
        time_s = f"{r['first_epoch_s']}, {r['median_epoch_s']}" if "first_epoch_s" in r else "-"
        print(f"| {r['run']} | {r['epochs_done']}/{r['epochs_planned']} | {score} | {time_s} | "
              f"{r.get('median_audio_s_per_s', '-')} |")
    if args.json:
        with open(args.json, "a") as f:
            for r in rows:
                f.write(json.dumps({"run_summary": r}) + "\n")
    scored = [r for r in rows if "valid_wer" in r]
    if args.best_file and scored:
        args.best_file.write_text(min(scored, key=lambda r: r["valid_wer"])["run"] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
