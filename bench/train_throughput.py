"""Training throughput in audio-seconds per second: compute-only vs end-to-end, side by side.

compute-only: one synthetic batch already on the device; forward, CTC, backward, AdamW step.
end-to-end:   the real path, from audio files on disk (decoded on first use, then cached)
              through the training loop's batch loader, features, the same step; timed over a
              second pass, from the cache, after a first pass that decodes.

    python bench/train_throughput.py configs/small.yaml --manifest data/so762/train.jsonl --steps 20

Prints one JSON line (rates, ratio, peak memory) at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

from asr import distributed
from asr.batching import BatchLoader, BucketBatchSampler
from asr.config_files import load_config
from asr.data import Batch, SpeechDataset, read_manifest
from asr.losses import ctc_loss
from asr.model import AcousticModel
from asr.text import CharTokenizer


def step(model, optimizer, batch, blank, use_amp, scaler):
    with torch.autocast(batch.waveforms.device.type, dtype=torch.float16, enabled=use_amp):
        log_probs, out_lengths = model(batch.waveforms, batch.wave_lengths)
    losses, valid = ctc_loss(log_probs, out_lengths, batch, blank)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses[valid].mean()).backward()
    scaler.step(optimizer)
    scaler.update()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--manifest", help="real training manifest for the end-to-end rate")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--utt-seconds", type=float, default=5.0, help="synthetic utterance length")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    torch.set_flush_denormal(True)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    _, device = distributed.setup(cfg.train.device)
    use_amp = cfg.train.amp and device.type == "cuda"
    torch.manual_seed(0)
    texts = [u.text for u in read_manifest(args.manifest)] if args.manifest else ["a quick brown fox jumps"]
    tokenizer = CharTokenizer.build(texts + ["abcdefghijklmnopqrstuvwxyz'"])
    model = AcousticModel(cfg.features, cfg.model, len(tokenizer), cfg.augment).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    results = {"config": args.config, "device": str(device), "threads": torch.get_num_threads(),
               "parameters": model.num_parameters(), "amp": use_amp}

    # compute-only: synthetic batch of batch_seconds of audio, resident on the device
    n_utts = max(1, min(cfg.train.max_batch_size, int(cfg.train.batch_seconds // args.utt_seconds)))
    samples = int(args.utt_seconds * cfg.features.sample_rate)
    label_len = int(args.utt_seconds * 12)
    batch = Batch(torch.randn(n_utts, samples, device=device) * 0.1,
                  torch.full((n_utts,), samples, device=device),
                  torch.randint(2, len(tokenizer), (n_utts, label_len), device=device),
                  torch.full((n_utts,), label_len, device=device), list(range(n_utts)))
    for _ in range(args.warmup):
        step(model, optimizer, batch, tokenizer.blank_id, use_amp, scaler)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(model, optimizer, batch, tokenizer.blank_id, use_amp, scaler)
    sync(device)
    compute_s = time.perf_counter() - t0
    results["compute_only_audio_s_per_s"] = round(n_utts * args.utt_seconds * args.steps / compute_s, 1)
    results["batch_utterances"] = n_utts

    if args.manifest:
        dataset = SpeechDataset(read_manifest(args.manifest), tokenizer, cfg.features.sample_rate)
        sampler = BucketBatchSampler(dataset.durations, cfg.train.batch_seconds, cfg.train.max_batch_size,
                                     shuffle=True, seed=0, speed_factors=cfg.augment.speed_factors)
        batches = sampler.batches(1)[: args.steps]

        def one_pass() -> float:  # the training loop's loader: decode threads, prefetch, pinned memory
            audio = 0.0
            sync(device)
            t0 = time.perf_counter()
            for real in BatchLoader(dataset, batches, pin_memory=device.type == "cuda"):
                real = real.to(device, non_blocking=True)
                step(model, optimizer, real, tokenizer.blank_id, use_amp, scaler)
                audio += float(real.wave_lengths.sum()) / cfg.features.sample_rate
            sync(device)
            return round(audio / (time.perf_counter() - t0), 1)

        # The first pass decodes the audio (as a run's first epoch does); the second reads it from
        # the cache, as every later epoch does: that one is the end-to-end rate.
        results["first_pass_audio_s_per_s"] = one_pass()
        results["end_to_end_audio_s_per_s"] = one_pass()
        results["ratio"] = round(results["end_to_end_audio_s_per_s"] / results["compute_only_audio_s_per_s"], 3)
    if device.type == "cuda":
        results["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    results["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
