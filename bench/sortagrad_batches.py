"""How many batches each training epoch packs: SortaGrad's sorted first epoch against the shuffled
(length-jittered) ones, by the training's own sampler (``asr.batching.BucketBatchSampler``) on a
manifest's files' own durations (``asr.train_checks.file_durations``, over ``train.max_duration``
left out, as ``asr train`` reads its train split), with a config's ``batch_seconds``,
``max_batch_size``, ``seed`` and speed factors.

    python bench/sortagrad_batches.py data/so762/train.jsonl [--config asr/pretrained/default/config.yaml] [--epochs 20]

Why the schedule counts every epoch's steps up front (README.md, "Training").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.batching import BucketBatchSampler  # noqa: E402
from asr.config_files import load_config  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402
from asr.train_checks import file_durations  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "asr/pretrained/default/config.yaml"))
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    cfg = load_config(args.config)
    tc = cfg.train
    present = file_durations(read_manifest(args.manifest), cfg.features.sample_rate)[0]
    durations = [u.duration for u in present if u.duration <= tc.max_duration]
    sampler = BucketBatchSampler(durations, tc.batch_seconds, tc.max_batch_size, shuffle=True,
                                 sortagrad=tc.sortagrad, seed=tc.seed, speed_factors=cfg.augment.speed_factors)
    counts = sampler.batch_counts(args.epochs)
    later = counts[1:]
    print(json.dumps({"manifest": args.manifest, "config": args.config, "utterances": len(durations),
                      "hours": round(sum(durations) / 3600, 3), "batch_seconds": tc.batch_seconds,
                      "max_batch_size": tc.max_batch_size, "sortagrad": tc.sortagrad, "seed": tc.seed,
                      "speed_factors": list(cfg.augment.speed_factors), "epoch 1": counts[0],
                      f"epochs 2-{args.epochs}: min, mean, max": [min(later), round(sum(later) / len(later), 1),
                                                                   max(later)] if later else None,
                      "per epoch": counts}))


if __name__ == "__main__":
    main()
