"""pyctcdecode on saved log-probs, for bench/decode_speed.py. Runs in its OWN venv (pyctcdecode
needs numpy<2), never the project's:

    python3 -m venv /tmp/pyctc-venv && /tmp/pyctc-venv/bin/pip install pyctcdecode "numpy<2" kenlm
    /tmp/pyctc-venv/bin/python bench/pyctcdecode_decode.py LOGITS.npz --vocab vocab.json --lm LM.arpa \
        --unigrams words.txt --weights 0.5,1.0 0.3,0 --beam-size 50

LOGITS.npz holds ``lp_0 ... lp_N`` (frames x tokens log-probs). Prints one JSON object:
{"weights": [[alpha, beta, [hyp...], decode_seconds], ...], "load_seconds": s}. Only stdlib,
numpy and pyctcdecode here.
"""

import argparse
import json
import sys
import time

import numpy as np
from pyctcdecode import build_ctcdecoder


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("logits")
    p.add_argument("--vocab", required=True, help="JSON list of tokens; index 0 blank, 1 the word separator")
    p.add_argument("--lm")
    p.add_argument("--unigrams", help="the LM's words, one a line")
    p.add_argument("--weights", nargs="+", default=["0.5,1.0"], help="alpha,beta pairs (natural-log units)")
    p.add_argument("--beam-size", type=int, default=50)
    args = p.parse_args(argv)
    tokens = json.load(open(args.vocab))
    labels = ["", " "] + tokens[2:]  # pyctcdecode's blank is "", its word separator " "
    data = np.load(args.logits)
    logits = [data[f"lp_{i}"] for i in range(len(data.files))]
    unigrams = open(args.unigrams).read().split() if args.unigrams else None
    start = time.perf_counter()
    alpha, beta = (float(x) for x in args.weights[0].split(","))
    decoder = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=unigrams, alpha=alpha, beta=beta)
    load = time.perf_counter() - start
    out = []
    for pair in args.weights:
        alpha, beta = (float(x) for x in pair.split(","))
        if args.lm:
            decoder.reset_params(alpha=alpha, beta=beta)
        start = time.perf_counter()
        hyps = [decoder.decode(lp, beam_width=args.beam_size) for lp in logits]
        out.append([alpha, beta, hyps, time.perf_counter() - start])
    json.dump({"weights": out, "load_seconds": load}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
