"""Decoding: WER and speed of greedy, beam and beam+LM search, and of pyctcdecode on the same
log-probs with the same LM.

    OMP_NUM_THREADS=1 python bench/decode_speed.py --model exp/so762_small/best \
        --manifest data/so762/test.jsonl --tune-manifest data/so762/valid.jsonl \
        --lm /tmp/asr-lm/lj_train_3gram.arpa --lm /tmp/asr-lm/lj_train_4gram.arpa \
        [--pyctc-python /tmp/pyctc-venv/bin/python]

The acoustic model runs once per manifest; every decoder then works on the same log-probs.
LM weight and word score are tuned on --tune-manifest (never the test split) for each LM, for
our decoder (8 x 7 grid) and for pyctcdecode (3 x 3 grid around ours; its weights are natural-log:
alpha = w / ln 10).
Decode times are one process, search only (LM loading excluded, reported apart). RTF = decode
seconds / audio seconds. Prints a Markdown table and one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.data import read_manifest
from asr.decoding import GreedyDecoder
from asr.evaluate import join_pieces
from asr.metrics import word_errors
from asr.transcribe import load_model
from asr.tuning import DEFAULT_LM_WEIGHTS, DEFAULT_WORD_SCORES, model_outputs

PYCTC_SCRIPT = Path(__file__).with_name("pyctcdecode_decode.py")


def wer(refs, hyps) -> float:
    """Pieces of a cut utterance (reference None) joined, as evaluate scores them."""
    return word_errors(*join_pieces(refs, hyps)).rate


def run(decoder, batches):
    refs, hyps = [], []
    start = time.perf_counter()
    for log_probs, lengths, batch_refs in batches:
        hyps += [h.text for h in decoder.decode(log_probs, lengths)]
        refs += batch_refs
    return wer(refs, hyps), time.perf_counter() - start


def flatten(batches):
    """[(T, V) float32 arrays], [references] in batch order."""
    arrays, refs = [], []
    for log_probs, lengths, batch_refs in batches:
        arrays += [log_probs[b, : int(lengths[b])].numpy().astype(np.float32) for b in range(len(batch_refs))]
        refs += batch_refs
    return arrays, refs


def pyctcdecode(python, arrays, tokens, lm, words, weights, beam_size, workdir):
    np.savez(workdir / "logits.npz", **{f"lp_{i}": a for i, a in enumerate(arrays)})
    (workdir / "vocab.json").write_text(json.dumps(list(tokens)))
    (workdir / "words.txt").write_text("\n".join(words) + "\n")
    cmd = [python, str(PYCTC_SCRIPT), str(workdir / "logits.npz"), "--vocab", str(workdir / "vocab.json"),
           "--beam-size", str(beam_size), "--weights", *[f"{a},{b}" for a, b in weights]]
    if lm:
        cmd += ["--lm", str(lm), "--unigrams", str(workdir / "words.txt")]
    out = subprocess.run(cmd, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if out.returncode:
        raise RuntimeError(f"pyctcdecode failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True, help="the split to report on")
    p.add_argument("--tune-manifest", required=True, help="the split to tune weights on (never test)")
    p.add_argument("--lm", action="append", default=[])
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--limit", type=int, default=0, help="first N utterances of each manifest (0: all)")
    p.add_argument("--pyctc-python", help="python of a venv with pyctcdecode (skipped when not given)")
    p.add_argument("--workers", type=int, default=1, help="also time beam+LM with this many processes")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    transcriber = load_model(args.model, device="cpu")
    tokenizer = transcriber.tokenizer
    sets = {}
    for name, path in (("report", args.manifest), ("tune", args.tune_manifest)):
        utts = read_manifest(path)[: args.limit or None]
        start = time.perf_counter()
        batches, skipped, silent = model_outputs(transcriber, utts)  # silent ones: never run
        audio = sum(u.duration for u in utts)
        sets[name] = (batches, audio, time.perf_counter() - start)
        print(f"# {name}: {path}, {sum(r is not None for b in batches for r in b[2])} utterances run, "
              f"{len(silent)} silent, {audio:.0f} s audio, "
              f"acoustic model + audio loading {sets[name][2]:.1f} s, {len(skipped)} skipped", file=sys.stderr)
    test, audio, _ = sets["report"]
    n_utts = sum(r is not None for b in test for r in b[2])
    rows = []

    def row(name, wer, seconds, **extra):
        r = {"decoder": name, "wer": round(wer, 4), "decode_seconds": round(seconds, 3),
             "utterances_per_second": round(n_utts / seconds, 1), "rtf": round(seconds / audio, 5), **extra}
        rows.append(r)
        print(json.dumps(r), flush=True)

    row("greedy", *run(GreedyDecoder(tokenizer), test))
    plain = BeamSearchDecoder(tokenizer, options=BeamSearchOptions(beam_size=args.beam_size))
    row(f"beam {args.beam_size}, no LM", *run(plain, test))
    arrays = {k: flatten(v[0]) for k, v in sets.items()}
    for lm in args.lm:
        start = time.perf_counter()
        decoder = BeamSearchDecoder(tokenizer, lm=lm, options=BeamSearchOptions(beam_size=args.beam_size))
        load = time.perf_counter() - start
        grid = [(w, s, run(decoder.with_options(lm_weight=w, word_score=s), sets["tune"][0])[0])
                for w in DEFAULT_LM_WEIGHTS for s in DEFAULT_WORD_SCORES]
        w, s, tune_wer = min(grid, key=lambda g: (round(g[2], 9), g[0], abs(g[1])))
        best = decoder.with_options(lm_weight=w, word_score=s)
        row(f"beam {args.beam_size} + {Path(lm).name}", *run(best, test), lm_weight=w, word_score=s,
            tune_wer=round(tune_wer, 4), lm_load_seconds=round(load, 2))
        if args.workers > 1:
            par = decoder.with_options(lm_weight=w, word_score=s)
            par.workers = args.workers
            row(f"beam {args.beam_size} + {Path(lm).name}, {args.workers} processes", *run(par, test))
            par.close()
        if args.pyctc_python and not decoder.lexicon_free:  # pyctcdecode takes word LMs only
            words = list(decoder.space.lexicon)
            with tempfile.TemporaryDirectory() as tmp:
                # Tune pyctcdecode's own weights (natural-log units) on a 3x3 grid around ours: it is slow.
                grid_p = [(round(f * w / math.log(10), 4), s + d) for f in (0.5, 1.0, 1.5) for d in (-1.0, 0.0, 1.0)]
                tuned = pyctcdecode(args.pyctc_python, arrays["tune"][0], tokenizer.tokens, lm, words, grid_p,
                                    args.beam_size, Path(tmp))
                scored = [(a, b, wer(arrays["tune"][1], hyps)) for a, b, hyps, _ in tuned["weights"]]
                a, b, tune_wer = min(scored, key=lambda g: (round(g[2], 9), g[0], abs(g[1])))
                out = pyctcdecode(args.pyctc_python, arrays["report"][0], tokenizer.tokens, lm, words, [(a, b)],
                                  args.beam_size, Path(tmp))
                _, _, hyps, seconds = out["weights"][0]
                row(f"pyctcdecode beam {args.beam_size} + {Path(lm).name}", wer(arrays["report"][1], hyps),
                    seconds, alpha=a, beta=b, tune_wer=round(tune_wer, 4), lm_load_seconds=round(out["load_seconds"], 2))
                # ... and at our decoder's tuned weights, for the same search problem.
                out = pyctcdecode(args.pyctc_python, arrays["report"][0], tokenizer.tokens, lm, words,
                                  [(round(w / math.log(10), 4), s)], args.beam_size, Path(tmp))
                _, _, hyps, seconds = out["weights"][0]
                row(f"pyctcdecode beam {args.beam_size} + {Path(lm).name}, our weights",
                    wer(arrays["report"][1], hyps), seconds, alpha=round(w / math.log(10), 4), beta=s)
    if args.pyctc_python:
        with tempfile.TemporaryDirectory() as tmp:
            out = pyctcdecode(args.pyctc_python, arrays["report"][0], tokenizer.tokens, None, [], [(0.0, 0.0)],
                              args.beam_size, Path(tmp))
            _, _, hyps, seconds = out["weights"][0]
            row(f"pyctcdecode beam {args.beam_size}, no LM", wer(arrays["report"][1], hyps), seconds)

    print(f"\n{n_utts} utterances, {audio:.0f} s audio; model {args.model}\n")
    print("| decoder | WER % | utterances/s | RTF (search only) | weights (tuned on dev) |")
    print("|---|---|---|---|---|")
    for r in rows:
        weights = (f"lm_weight {r['lm_weight']}, word_score {r['word_score']}" if "lm_weight" in r else
                   f"alpha {r['alpha']}, beta {r['beta']}" if "alpha" in r else "")
        print(f"| {r['decoder']} | {100 * r['wer']:.2f} | {r['utterances_per_second']} | {r['rtf']} | {weights} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
