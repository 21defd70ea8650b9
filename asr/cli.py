"""The ``asr`` command: its arguments (argparse), and one-line errors for what a user can get wrong.

The subcommands themselves are in asr/commands.py, asr/data_commands.py, asr/export_commands.py,
asr/average_commands.py and asr/lm_commands.py (``asr lm ...``, whose arguments are in asr/cli_lm.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from asr import DECODERS, __version__
from asr.cli_lm import add_lm_parser
from asr.cli_types import at_least, floats, lm_weights, positive, prior_scales, threads_arg, user_path, votes
from asr.commands import (cmd_combine, cmd_compare, cmd_diagram, cmd_evaluate, cmd_plot, cmd_train, cmd_transcribe,
                          cmd_tune_rescoring, print_error)
from asr.data_commands import cmd_download, cmd_prepare, cmd_synthesize
from asr.average_commands import cmd_average
from asr.export_commands import cmd_export
from asr.lm_commands import cmd_priors
from asr.user_errors import describe, user_error_types


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Recurrent CTC speech recognition.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="write JSON-lines manifests from a corpus")
    psub = p.add_subparsers(dest="corpus", required=True)
    so = psub.add_parser("speechocean762", help="the official release layout -> OUT/{train,test}.jsonl")
    so.add_argument("src", type=user_path)
    so.add_argument("out", type=user_path)
    so.add_argument("--valid-speakers", type=positive(int, zero=True), default=0,
                    help="hold out this many train speakers as OUT/valid.jsonl (drawn with a fixed seed: the same "
                         "speakers every run)")
    kd = psub.add_parser("kaldi", help="any Kaldi data dir (wav.scp, text, utt2spk) -> one manifest")
    kd.add_argument("src", type=user_path, metavar="DATA_DIR")
    kd.add_argument("out", type=user_path, metavar="OUT.jsonl")
    kd.add_argument("--root", type=user_path,
                    help="folder that relative wav.scp paths start from (default: DATA_DIR/..)")
    ls = psub.add_parser("librispeech", help="LibriSpeech or Mini LibriSpeech (FLAC + *.trans.txt) -> "
                         "OUT/train.jsonl (+ valid.jsonl) and OUT/SUBSET.jsonl per --eval subset")
    ls.add_argument("src", type=user_path, help="folder holding LibriSpeech/ (or the subsets)")
    ls.add_argument("out", type=user_path)
    ls.add_argument("--train", nargs="*", metavar="SUBSET",
                    help="train subsets, joined (default: every train-* found), e.g. train-clean-100 train-clean-360; "
                    "none (--train alone): the --eval subsets only, train.jsonl and valid.jsonl left as they are")
    ls.add_argument("--eval", nargs="*", metavar="SUBSET",
                    help="dev/test subsets, one manifest each (default: every other subset found)")
    ls.add_argument("--valid-speakers", type=positive(int, zero=True), default=0,
                    help="hold out this many train speakers as OUT/valid.jsonl")
    an = psub.add_parser("an4", help="CMU AN4 (SPHERE audio) -> OUT/{train,valid,test}.jsonl")
    an.add_argument("src", type=user_path, help="the an4/ folder, or the folder holding it")
    an.add_argument("out", type=user_path)
    an.add_argument("--valid-speakers", type=positive(int, zero=True), default=4,
                    help="train speakers held out as OUT/valid.jsonl")
    cv = psub.add_parser("commonvoice", help="Common Voice, any language (TSV + MP3 clips) -> "
                         "OUT/{train,dev,test}.jsonl")
    cv.add_argument("src", type=user_path, help="the language folder (clips/ + *.tsv), or a folder above it")
    cv.add_argument("out", type=user_path)
    cv.add_argument("--train-tsv", default="train",
                    help="train (default) or validated (all validated clips minus dev/test clips and speakers)")
    cv.add_argument("--language", help="language folder name when SRC holds several (en, de, ...)")
    fo = psub.add_parser("folder", help="your own data: a folder of audio + same-name .txt, or a CSV/TSV of "
                         "path,text[,speaker] -> OUT/train.jsonl (+ valid.jsonl, test.jsonl)")
    fo.add_argument("src", type=user_path, help="folder (speaker = first sub-folder) or .csv/.tsv table")
    fo.add_argument("out", type=user_path)
    fo.add_argument("--test", type=user_path, help="a second folder or table for OUT/test.jsonl")
    held = fo.add_mutually_exclusive_group()
    held.add_argument("--valid-speakers", type=positive(int, zero=True), default=0,
                      help="hold out this many speakers as OUT/valid.jsonl")
    held.add_argument("--valid-list", type=user_path,
                      help="file of utterance ids or speakers (one a line) for OUT/valid.jsonl")
    held.add_argument("--valid-fraction", type=float, default=0.0, help="hold out this random fraction instead")
    for q in (ls, an, fo):
        # None: not given, refused where nothing is drawn at random (asr.data_commands._unused_seed)
        q.add_argument("--seed", type=int, help="seed of the random held-out choice (default 0)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("download", help="fetch and unpack a corpus (resumable; checksummed where a checksum is "
                       "published, else checked by what it unpacks to; skipped when present)")
    p.add_argument("corpus",
                   choices=["librispeech", "mini_librispeech", "an4", "speechocean762", "commonvoice", "musan"])
    p.add_argument("--data-dir", type=user_path, default="corpus",
                   help="where archives and corpora go, or where a local copy is "
                   "(default: ./corpus)")
    p.add_argument("--subsets", nargs="+", help="LibriSpeech: any of train-clean-100 train-clean-360 "
                   "train-other-500 dev-clean dev-other test-clean test-other (default: train-clean-100 + dev/test)")
    p.add_argument("--archive", type=user_path, help="a local copy of the archive to unpack instead of downloading "
                   "(Common Voice: required, it needs a login)")
    p.add_argument("--url-base", help="a mirror holding the same files, e.g. https://us.openslr.org/resources/12")
    p.add_argument("--remove-archive", action="store_true", help="delete each downloaded archive once unpacked")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a model: asr train CONFIG.yaml [section.key=value ...]")
    p.add_argument("config", type=user_path)
    p.add_argument("overrides", nargs="*", help="e.g. train.lr=1e-3 model.cell=gru")
    p.add_argument("--resume", action="store_true", help="continue the run in train.output_dir")
    p.add_argument("--gpus", type=positive(int), default=1,
                   help="data-parallel processes on this machine (torchrun; gloo on CPU, nccl on GPU)")
    p.add_argument("--check", action="store_true",
                   help="check the config, its overrides and that the files it names exist (manifests, phone "
                   "lexicon, train.init_from's model), then stop: nothing trains or is written (what needs their "
                   "contents, e.g. the tokenizer, the lexicon's lines, train.init_from's config or the utterances' "
                   "lengths, is checked as training starts)")
    p.set_defaults(func=cmd_train)

    def model_args(p):
        p.add_argument("--model", type=user_path, help="model directory (default: the packaged model)")
        p.add_argument("--decoder", default="auto", choices=DECODERS,
                       help="auto (default): the package's n-best rescoring if it has one (rescoring.yaml), else "
                       "beam search with its packaged LM if it has one (or with --lm ...), else greedy; greedy and "
                       "beam use the package's own model alone (see README, Decoding)")
        p.add_argument("--device", default="auto", help="cpu, cuda or auto")

    def combine_args(p):
        p.add_argument("--combine", type=user_path, nargs="+", metavar="MODEL",
                       help="also run these model directories (each "
                       "searching as its package says) and combine every system's words by ROVER, --model "
                       "first (it wins ties; beam search options apply to it alone); see asr combine")
        p.add_argument("--rescoring", type=user_path, metavar="FILE",
                       help="n-best rescoring across the models that FILE names, "
                       "with its tuned weights (write one with asr tune-rescoring); instead of --model and --combine")

    def beam_args(p):
        g = p.add_argument_group("beam search (unset values come from MODEL/decoding.yaml when searching with "
                                 "an LM, else defaults)")
        g.add_argument("--lm", type=user_path, metavar="LM",
                       help="KenLM language model, ARPA or binary (asr lm build); default: "
                       "the LM packaged in the model, if any; 'none': search without an LM")
        g.add_argument("--lexicon", type=user_path,
                       help="lexicon file, a line per spelling: a word, its tokens as the model segments it, "
                       "then | (default: the ARPA LM's words; 'none' for lexicon-free search with a character "
                       "or token LM)")
        g.add_argument("--beam-size", type=positive(int),
                       help="hypotheses kept per frame (default: MODEL/decoding.yaml's with an LM, else 50)")
        g.add_argument("--beam-size-token", type=positive(int),
                       help="tokens tried per frame, the likeliest (default: all)")
        g.add_argument("--beam-threshold", type=positive(float, zero=True))  # NaN would keep no hypothesis
        g.add_argument("--lm-weight", type=float)
        g.add_argument("--word-score", type=float, help="added per word (insertion bonus)")
        g.add_argument("--blank-penalty", type=float, help="subtracted from the blank's log-prob at every frame")
        g.add_argument("--prior-scale", type=float, help="times log p(token), subtracted from each token's log-prob "
                       "(needs MODEL/token_priors.json: asr priors)")
        g.add_argument("--nbest", type=positive(int), help="keep this many transcripts (json: 'alternatives')")
        g.add_argument("--hotwords", type=user_path, help="words/phrases to boost: a file (a phrase a line, or several "
                       "comma-separated) or 'a,b c'")
        g.add_argument("--hotword-weight", type=float,
                       help="bonus per hotword word (default 5); a hotword the LM does not know is scored as "
                       "its rarest word when its <unk> is less likely")
        g.add_argument("--decode-workers", type=positive(int), default=min(2, os.cpu_count() or 1),
                       help="processes for the beam search of a batch (default: 2 if there are 2 cores)")

    p = sub.add_parser("evaluate", help="WER/CER of a model on a manifest")
    p.add_argument("manifest", type=user_path, help="JSON lines with audio_filepath and text (asr prepare writes them)")
    model_args(p)
    beam_args(p)
    combine_args(p)
    p.add_argument("--json", action="store_true", help="stdout is the summary line, then the same as one JSON "
                   "object (the per-utterance lines go to -o, if given)")
    p.add_argument("--output", "-o", type=user_path, help="write per-utterance REF/HYP lines here instead of stdout")
    p.add_argument("--batch-seconds", type=positive(float), default=300.0,
                   help="audio per model run, in seconds (default 300; less needs less memory)")
    p.add_argument("--report", type=user_path, metavar="DIR",
                   help="also write an sclite-style error report here (md, html, json)")
    p.add_argument("--force", action="store_true", help="overwrite a --report directory that is not empty")
    threads_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tune-rescoring", help="tune n-best rescoring across models (their CTC scores, the first "
                       "model's word LM, a word bonus) on a dev manifest -> a file for --rescoring")
    p.add_argument("manifest", type=user_path, help="a dev manifest (never the test split)")
    p.add_argument("--model", type=user_path, required=True,
                   help="the first system: its tokenizer, word LM and word times are used")
    p.add_argument("--combine", type=user_path, nargs="+", default=[], metavar="MODEL",
                   help="the other systems (none: the "
                   "first model's own n-best, rescored with --rnnlm)")
    p.add_argument("--output", "-o", type=user_path, required=True, metavar="FILE",
                   help="write the tuned settings here (YAML)")
    p.add_argument("--nbest", type=positive(int), default=16, help="candidates each system proposes (default 16)")
    p.add_argument("--rnnlm", type=user_path, metavar="DIR",
                   help="a recurrent word LM (asr lm rnn) to interpolate with the first "
                   "system's word LM; its share is chosen by perplexity on the manifest's transcripts")
    p.add_argument("--prior-scales", type=prior_scales, default="0",
                   help="comma-separated grid (default 0: none), e.g. 0,0.3,0.6: each system's CTC scores over "
                   "posteriors divided by its token priors to this power (needs every "
                   "system's token_priors.json: asr priors)")
    # The grids (asr.rescoring's DEFAULT_*): each point only re-ranks the pooled candidates, so
    # wide ones are cheap; the systems search once whatever their size.
    p.add_argument("--weights", type=floats, help="comma-separated grid of each system's weight after the first "
                   "(default 0.25,0.5,1,1.5; 0: the system's n-best joins the candidates, but it has no say "
                   "over them, not even over what it cannot spell)")
    p.add_argument("--lm-weights", type=lm_weights, help="comma-separated grid (default 0.5,1,2,3,4)")
    p.add_argument("--word-scores", type=floats, help="comma-separated grid (default -2,-1,0,1,2,3); a list that "
                   "starts with a minus needs '=': --word-scores=-2,0,2")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--decode-workers", type=positive(int), default=min(2, os.cpu_count() or 1),
                   help="processes for each system's beam search (default: 2 if there are 2 cores)")
    p.add_argument("--batch-seconds", type=positive(float), default=300.0,
                   help="audio per model run, in seconds (default 300; less needs less memory)")
    threads_arg(p)
    p.set_defaults(func=cmd_tune_rescoring)

    p = sub.add_parser("transcribe", help="transcribe audio files, folders, globs or - (stdin) of any length: "
                       "text, JSON with word times, SRT/VTT subtitles")
    p.add_argument("files", type=user_path, nargs="+", metavar="INPUT",
                   help="audio file, folder (searched recursively), glob, "
                   "or - for a WAV on stdin; m4a/mp4/webm/... need ffmpeg")
    model_args(p)
    beam_args(p)
    combine_args(p)
    p.add_argument("--format", default="txt", choices=["txt", "json", "srt", "vtt", "tsv", "all"],
                   help="txt: path<TAB>text (a line per segment in --output-dir); json: words, segments, times "
                   "and confidence; srt/vtt: subtitles; tsv: start/end ms + text; all: each (needs --output-dir)")
    p.add_argument("--output-dir", "-o", type=user_path, metavar="DIR",
                   help="write one file per input and format here, named after the input (a/x.wav -> x.txt); "
                   "inputs of one name from different folders get the folders that tell them apart, whatever "
                   "their order (a/x.wav, b/x.wav -> a_x.txt, b_x.txt; x.wav, x.flac -> x.wav.txt, x.flac.txt) "
                   "(default: print to stdout)")
    p.add_argument("--force", action="store_true", help="with --output-dir a folder that holds inputs: replace "
                   "its existing files (a.txt beside a.wav is kept otherwise: it may be a reference transcript)")
    p.add_argument("--batch-size", type=positive(int), default=16,
                   help="segments (of files or of long files) per model run (default %(default)s)")
    threads_arg(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar (it is off anyway when stderr "
                   "is not a terminal)")
    p.set_defaults(func=cmd_transcribe)

    add_lm_parser(sub)
    p = sub.add_parser("synthesize", help="extra training speech: sentences read by flite/espeak-ng voices "
                       "-> OUT/train.jsonl + OUT/audio/")
    p.add_argument("texts", type=user_path, nargs="+", metavar="TEXT", help="text files, a sentence a line")
    p.add_argument("out", type=user_path, metavar="OUT")
    p.add_argument("--num", type=positive(int), default=1000, help="sentences to synthesize (default 1000)")
    p.add_argument("--voices", help="comma-separated flite:NAME / espeak-ng:NAME (default: 4 flite voices "
                   "and 4 espeak-ng English variants)")
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=14)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--freq-scale", type=floats, default="1,1", metavar="LOW,HIGH",
                   help="scale each utterance's frequencies (F0 and formants, at the same duration) by a random "
                   "factor in this range: 1,1.3 makes adult voices more child-like (default 1,1: as synthesized)")
    p.add_argument("--jobs", type=positive(int), default=os.cpu_count() or 1)
    p.set_defaults(func=cmd_synthesize)
    p = sub.add_parser("export", help="copy a model directory, optionally with float16 weights; or package "
                       "a rescoring file's systems as one model directory")
    p.add_argument("src", type=user_path,
                   help="a model directory, or a file from asr tune-rescoring: DST then becomes one "
                   "package that rescores (the first system, the others in DST/systemN, rescoring.yaml)")
    p.add_argument("dst", type=user_path)
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size; a float16 model "
                   "stays float16 without it)")
    p.add_argument("--lm", type=user_path,
                   help="package this LM with the model (quantized KenLM binary if build_binary is "
                   "installed): plain `asr transcribe` then searches with it, using decoding.yaml's tuned weights")
    p.add_argument("--lexicon", type=user_path, help="with --lm: the lexicon to package (default: the ARPA LM's words)")
    p.add_argument("--force", action="store_true", help="replace a DST that exists (a model directory: it is "
                   "replaced whole, whatever else it held)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("average", help="one model directory whose weights are the mean of a run's kept epochs "
                       "(RUN/epochs/, train.average_last) or of model directories of one network")
    p.add_argument("inputs", type=user_path, nargs="+", metavar="INPUT",
                   help="a run directory with epochs/, or two or more model directories")
    p.add_argument("-o", "--output", type=user_path, required=True, help="the model directory to write")
    p.add_argument("--last", type=positive(int), metavar="K", help="a run's last K epochs only (default: all it kept)")
    p.add_argument("--manifest", type=user_path, help="for a network with batch norm: the training data to measure "
                   "its statistics on again (default: the run's train manifest)")
    p.add_argument("--force", action="store_true", help="replace an OUTPUT that exists")
    p.set_defaults(func=cmd_average)
    p = sub.add_parser("priors", help="estimate a CTC model's token priors (its mean posterior over training frames) "
                       "into MODEL/token_priors.json, for prior-corrected beam search (asr lm tune --prior-scales)")
    p.add_argument("model", type=user_path, help="model directory (a rescoring package's systems are directories too)")
    p.add_argument("manifest", type=user_path, help="training manifest (never the test split)")
    p.add_argument("--every", type=positive(int), default=1, metavar="N",
                   help="every Nth utterance only (default: all)")
    p.add_argument("--batch-seconds", type=positive(float), default=300.0,
                   help="audio per model run, in seconds (default 300; less needs less memory)")
    p.add_argument("--device", default="auto")
    threads_arg(p)
    p.set_defaults(func=cmd_priors)

    p = sub.add_parser("compare", help="which utterances got better or worse between two evaluate --report dirs")
    p.add_argument("report_a", type=user_path, metavar="REPORT_A")
    p.add_argument("report_b", type=user_path, metavar="REPORT_B")
    p.add_argument("--limit", type=positive(int, zero=True), default=0,
                   help="show at most N utterances per list (default, 0: all)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("combine", help="ROVER: vote word by word among several systems' evaluate --report dirs "
                       "-> one combined report")
    p.add_argument("reports", type=user_path, nargs="+", metavar="REPORT", help="report directories, best system first "
                   "(it wins ties)")
    p.add_argument("--output", "-o", type=user_path, required=True, metavar="DIR",
                   help="write the combined report here")
    p.add_argument("--weights", type=votes, help="votes per system, comma-separated, at least 0 (default: 1 each)")
    p.add_argument("--force", action="store_true", help="overwrite an --output directory that is not empty")
    p.set_defaults(func=cmd_combine)

    p = sub.add_parser("plot", help="pictures: one file's alignment, or a run's training curves")
    psub = p.add_subparsers(dest="what", required=True)
    pa = psub.add_parser("alignment", help="waveform, features, CTC posteriorgram and words of one audio file; "
                         "the words are transcribe's (a package that rescores: the rescored words, aligned to "
                         "its first system's posteriors, which are drawn)")
    pa.add_argument("source", type=user_path, metavar="FILE")
    model_args(pa)
    beam_args(pa)
    pt = psub.add_parser("training", help="loss and WER/CER per epoch from RUN_DIR/log.jsonl")
    pt.add_argument("source", type=user_path, metavar="RUN_DIR")
    for q in (pa, pt):
        q.add_argument("--output", "-o", type=user_path, required=True, help="image file: .png, .svg or .pdf")
    p.set_defaults(func=cmd_plot)

    for name, text in (("diagram", "draw the network unrolled in time (.svg, .png or .pdf by suffix)"),
                       ("summary", "per-layer output shapes and parameter counts")):
        p = sub.add_parser(name, help=text)
        source = p.add_mutually_exclusive_group()
        source.add_argument("--model", type=user_path, help="model directory (default: the packaged model)")
        source.add_argument("--config", type=user_path, help="a training config instead (untrained weights)")
        p.add_argument("overrides", nargs="*", metavar="section.key=value",
                       help="with --config: changes to it, as asr train takes them (e.g. model.cell=gru)")
        p.add_argument("--vocab-size", type=at_least(2, "the CTC blank and one token"),
                       help="with --config: output tokens (default: assumed 29 for characters, "
                       "train.bpe_vocab_size + 1 for train.units=bpe; phones counted from train.phone_lexicon)")
        p.add_argument("--system", type=positive(int), metavar="N",
                       help="of a package that rescores, only system N (1-based; default: all of them)")
        if name == "diagram":
            p.add_argument("--output", "-o", type=user_path, required=True, help="image file, e.g. net.svg or net.png")
        else:
            p.add_argument("--seconds", type=positive(float), default=1.0,
                           help="input duration for the shapes (default 1; at most 600: the model runs on it)")
        p.set_defaults(func=cmd_diagram)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, docker stop, a SLURM time limit), raised where the process is, as Ctrl-C is:
    ``finally`` blocks and context managers remove the temporary files they were writing."""


def _terminate(signum, frame):
    raise Terminated()


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args``, but an argument no parser takes is refused by the subcommand it was
    given to, under that subcommand's usage (argparse's own error shows the top level's)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "overrides", None) is not None:
        # argparse takes one run of positionals: `asr train CONFIG --gpus 4 train.lr=1e-3` left the
        # overrides after the option unparsed; they go on the list, in the order given
        more = [a for a in unknown if "=" in a and not a.startswith("-")]
        args.overrides, unknown = args.overrides + more, [a for a in unknown if a not in more]
    if unknown:
        _given_to(parser, args, argv, set(unknown)).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _given_to(parser, args, argv: list[str], unknown: set[str]) -> argparse.ArgumentParser:
    """The parser whose arguments hold the first of ``unknown``: ``asr lm tune``'s for one after
    ``lm tune``, ``asr``'s for one before the command."""
    start = 0
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name not in (subs[0].choices if subs else ()) or name not in argv[start:]:
            return parser
        at = argv.index(name, start)
        if unknown.intersection(argv[start:at]):
            return parser
        parser, start = subs[0].choices[name], at + 1


def main(argv=None) -> int:
    args = parse_args(build_parser(), argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except BrokenPipeError:  # `asr ... | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if not isinstance(e, user_error_types()):
            raise
        print_error(describe(e))
        return 2
    except Terminated:
        print_error("terminated")
        return 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
