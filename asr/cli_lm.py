"""The ``asr lm`` subcommands' arguments (what each does: asr/lm_commands.py)."""

from __future__ import annotations

import os

from asr.cli_types import floats, lm_weights, positive, prior_scales, threads_arg, user_path
from asr.lm_commands import (cmd_lm_build, cmd_lm_import_sphinx, cmd_lm_mix, cmd_lm_perplexity, cmd_lm_prune, cmd_lm_rnn,
                             cmd_lm_tune)


TEXTS_HELP = ("text files (a sentence a line) or manifests (JSON lines with a 'text' field: *.jsonl, *.json), "
              "plain or gzipped")


def add_lm_parser(sub) -> None:
    """``asr lm build|mix|prune|import-sphinx|rnn|perplexity|tune`` on the ``asr`` subparsers ``sub``."""
    p = sub.add_parser("lm", help="language models: n-grams for beam search (build, tune, mix, prune, "
                       "import-sphinx, perplexity) and an LSTM for rescoring (rnn)")
    lsub = p.add_subparsers(dest="lm_command", required=True)
    b = lsub.add_parser("build", help="modified Kneser-Ney ARPA from text files and manifests (normalized)")
    b.add_argument("texts", type=user_path, nargs="+", metavar="TEXT",
                   help=TEXTS_HELP)
    b.add_argument("--output", "-o", type=user_path, required=True, metavar="LM.arpa")
    b.add_argument("--order", type=positive(int), default=3, help="n-gram order (default 3; beam search loads "
                   "up to 6)")
    b.add_argument("--unit", default="word", choices=["word", "char", "token"],
                   help="word: for a lexicon; char or token: units of the model itself, for lexicon-free search "
                   "(use a higher --order, e.g. 6)")
    b.add_argument("--tokenizer", type=user_path, metavar="MODEL",
                   help="with --unit token: the model directory (or its "
                   "tokenizer.json) whose tokens the LM predicts")
    b.set_defaults(func=cmd_lm_build)
    m = lsub.add_parser("mix", help="linear interpolation of ARPA LMs, weights given or fitted on dev text "
                        "(lowest perplexity)")
    m.add_argument("lms", type=user_path, nargs="+", metavar="LM.arpa")
    m.add_argument("--output", "-o", type=user_path, required=True, metavar="OUT.arpa")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--weights", type=floats, help="comma-separated, one per LM, summing to 1")
    g.add_argument("--dev", type=user_path, nargs="+", metavar="TEXT",
                   help="fit the weights on these texts or manifests "
                   "(a dev split, never the test split)")
    m.add_argument("--tokenizer", type=user_path, metavar="MODEL",
                   help="token LMs with --dev: the dev texts are spelled in this "
                   "model's tokens (its directory or tokenizer.json)")
    m.set_defaults(func=cmd_lm_mix)
    pr = lsub.add_parser("prune", help="entropy-based pruning of an ARPA LM (Stolcke 1998, as SRILM's ngram -prune): "
                         "drop the n-grams whose removal raises perplexity least")
    pr.add_argument("lm", type=user_path, metavar="LM.arpa")
    pr.add_argument("--output", "-o", type=user_path, required=True, metavar="OUT.arpa")
    pr.add_argument("--threshold", type=float, required=True, help="drop an n-gram when the relative perplexity "
                    "increase it alone causes is below this (1e-8 gentle, 1e-7 Kaldi's small LMs)")
    pr.set_defaults(func=cmd_lm_prune)
    s = lsub.add_parser("import-sphinx", help="a CMU Sphinx binary trie LM (*.lm.bin, e.g. pocketsphinx's "
                        "en-us.lm.bin) as an ARPA file over normalized words")
    s.add_argument("lm", type=user_path, metavar="BIN", help="the .lm.bin file (or .lm.bin.gz)")
    s.add_argument("--output", "-o", type=user_path, required=True, metavar="OUT.arpa")
    s.add_argument("--keep-all-words", action="store_true", help="write every word as it is (default: lower-case "
                   "words, drop those that normalization would change, e.g. 'a.', 'al-qaeda', with their n-grams)")
    s.set_defaults(func=cmd_lm_import_sphinx)
    r = lsub.add_parser("rnn", help="train a recurrent (LSTM) word LM for n-best rescoring (asr tune-rescoring "
                        "--rnnlm), keeping the weights with the lowest dev perplexity")
    r.add_argument("texts", type=user_path, nargs="+", metavar="TEXT",
                   help=TEXTS_HELP)
    r.add_argument("--output", "-o", type=user_path, required=True, metavar="DIR")
    r.add_argument("--dev", type=user_path, nargs="+", metavar="TEXT",
                   help="select the weights on these (a dev split, never the "
                   "test split); without, the last epoch is kept")
    r.add_argument("--repeat", type=floats, help="times each TEXT's sentences are seen per epoch, comma-separated "
                   "(e.g. 10,1: the in-domain transcripts weigh more); default once each")
    # The defaults are asr.rnnlm.RNNLMOptions' (importing it here would load torch for every
    # command; tests/test_cli.py checks that these match).
    r.add_argument("--epochs", type=positive(int), help="at most; with --dev, training stops earlier when "
                   "halving the rate stops helping (default 6)")
    r.add_argument("--hidden-size", type=positive(int), help="LSTM units (default 256)")
    r.add_argument("--num-layers", type=positive(int), help="LSTM layers (default 1)")
    r.add_argument("--dropout", type=float, help="(default 0.3)")
    r.add_argument("--seed", type=int, help="(default 0)")
    r.add_argument("--min-count", type=positive(int), help="words seen fewer times an epoch (--repeat counted) "
                   "train <unk> instead, so that a word the LM does not know still leaves a trained context; "
                   "1: every word is in the vocabulary (default 1)")
    r.add_argument("--lr", type=positive(float), help="learning rate, times 0.8 each epoch (default 0.002)")
    r.add_argument("--checks-per-epoch", type=positive(int), help="with --dev: dev perplexity checks per epoch "
                   "(default 4)")
    r.add_argument("--halvings", type=int, help="with --dev: how often a rise in dev perplexity sends training back "
                   "to the best weights at half the rate before it stops (default 3)")
    threads_arg(r)
    r.add_argument("--force", action="store_true", help="replace an --output directory that holds anything")
    r.set_defaults(func=cmd_lm_rnn)
    pp = lsub.add_parser("perplexity", help="perplexity and OOV rate of ARPA LMs (word, character or token: "
                         "the text is read in the LM's units) on texts or manifests",
                         # the LMs first: argparse's own order (--texts TEXT... LM.arpa) takes the LM for a text
                         usage="%(prog)s [-h] LM.arpa [LM.arpa ...] --texts TEXT [TEXT ...] [--tokenizer MODEL]")
    pp.add_argument("lms", type=user_path, nargs="+", metavar="LM.arpa")
    pp.add_argument("--texts", type=user_path, nargs="+", required=True, metavar="TEXT")
    pp.add_argument("--tokenizer", type=user_path, metavar="MODEL",
                    help="token LMs: spell the texts in this model's tokens")
    pp.set_defaults(func=cmd_lm_perplexity)
    t = lsub.add_parser("tune", help="grid-search LM weight, word score, blank penalty and prior scale on a dev "
                        "manifest; "
                        "store the best in MODEL/decoding.yaml")
    t.add_argument("manifest", type=user_path, help="dev manifest (never the test split)")
    t.add_argument("--model", type=user_path, required=True, help="model directory; decoding.yaml is written into it")
    t.add_argument("--lm", type=user_path, required=True, help="ARPA or KenLM binary LM (asr lm build)")
    t.add_argument("--lexicon", type=user_path)
    t.add_argument("--lm-weights", type=lm_weights, default="0,0.25,0.5,0.75,1,1.5,2,3",
                   help="comma-separated grid")
    t.add_argument("--word-scores", type=floats, default="-3,-2,-1,0,1,2,3",
                   help="comma-separated grid; a list that starts with a minus needs '=': --word-scores=-2,-1,0")
    t.add_argument("--blank-penalties", type=floats, default="0",
                   help="comma-separated grid (default 0: no penalty), e.g. 0,0.5,1,1.5")
    t.add_argument("--prior-scales", type=prior_scales, default="0",
                   help="comma-separated grid (default 0: none), e.g. 0,0.3,0.6: log p(k) times this is taken from "
                   "each token's log-prob (needs MODEL/token_priors.json: asr priors)")
    t.add_argument("--beam-size", type=positive(int), default=50)
    t.add_argument("--beam-size-token", type=positive(int),
                   help="tokens tried per frame, the likeliest (default: all); "
                   "stored with the weights")
    t.add_argument("--beam-threshold", type=positive(float, zero=True),  # NaN would keep no hypothesis
                   help="drop hypotheses this far below the best (default 25); stored with the weights")
    t.add_argument("--batch-seconds", type=positive(float), default=300.0,
                   help="audio per model run, in seconds (default 300; less needs less memory)")
    t.add_argument("--decode-workers", type=positive(int), default=min(2, os.cpu_count() or 1))
    t.add_argument("--device", default="auto")
    t.add_argument("--dry-run", action="store_true", help="print the best settings, write nothing")
    threads_arg(t)
    t.set_defaults(func=cmd_lm_tune)
