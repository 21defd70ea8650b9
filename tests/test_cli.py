"""The command line end to end: prepare a Kaldi dir, train, evaluate, transcribe."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def kaldi_dir(tiny_corpus, tmp_path_factory):
    """A Kaldi data dir over the tiny corpus' audio, plus one entry whose audio is missing."""
    d = tmp_path_factory.mktemp("kaldi") / "train"
    d.mkdir()
    rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    (d / "wav.scp").write_text("".join(f"{r['id']} {r['audio_filepath']}\n" for r in rows)
                               + "ghost /nonexistent/ghost.wav\n")
    (d / "text").write_text("".join(f"{r['id']} {r['text']}\n" for r in rows) + "ghost HELLO\n")
    (d / "utt2spk").write_text("".join(f"{r['id']} {r['speaker']}\n" for r in rows) + "ghost x\n")
    return d


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_run") / "run"
    code = main(["train", "configs/small.yaml", f"train.train_manifest={tiny_corpus / 'train.jsonl'}",
                 f"train.valid_manifest={tiny_corpus / 'valid.jsonl'}", f"train.output_dir={out}",
                 "model.num_layers=1", "model.hidden_size=32", "model.conv_channels=4", "train.epochs=2",
                 "train.batch_seconds=20", "train.progress=false"])
    assert code == 0
    return out / "best"


def test_prepare_kaldi_writes_a_manifest_and_reports_what_it_skipped(kaldi_dir, tmp_path, capsys):
    assert main(["prepare", "kaldi", str(kaldi_dir), str(tmp_path / "out.jsonl")]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(r["duration"] > 0 for r in rows)
    assert "ghost" in err and "file not found" in err
    assert "20 utterances" in out and "1 skipped" in out


def test_prepare_from_a_folder_that_is_not_there_says_so(tmp_path, capsys):
    assert main(["prepare", "speechocean762", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'nowhere'}: not found" in capsys.readouterr().err


def test_evaluate_prints_wer_and_ends_with_a_json_summary(trained, tiny_corpus, capsys):
    assert main(["evaluate", str(tiny_corpus / "valid.jsonl"), "--model", str(trained), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert {"wer", "cer", "utterances", "audio_seconds", "decode_seconds"} <= summary.keys()
    assert summary["utterances"] == 4 and summary["audio_seconds"] > 0


def test_evaluate_refuses_an_empty_manifest(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["evaluate", str(tmp_path / "empty.jsonl"), "--model", str(tiny_model_dir)]) == 2
    assert "empty.jsonl: no utterances to evaluate" in capsys.readouterr().err


def test_evaluate_with_no_readable_audio_scores_nothing_rather_than_a_perfect_zero(tiny_model_dir, tmp_path,
                                                                                      capsys):
    rows = [{"audio_filepath": str(tmp_path / f"gone{i}.wav"), "duration": 1.0, "text": "hello", "id": f"u{i}"}
            for i in range(2)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json",
                 "--report", str(tmp_path / "rep")]) == 1
    out, err = capsys.readouterr()
    assert "WER" not in out and "wer" not in out
    assert "gone0.wav" in err and "none of its 2 utterances could be read and decoded: nothing scored, no report written" in err
    assert not (tmp_path / "rep").exists()


def test_evaluate_warns_that_repeated_ids_make_its_reports_unmatchable(trained, tiny_corpus, tmp_path, capsys):
    line = (tiny_corpus / "valid.jsonl").read_text().splitlines()[0]
    (tmp_path / "twice.jsonl").write_text(f"{line}\n{line}\n")
    assert main(["evaluate", str(tmp_path / "twice.jsonl"), "--model", str(trained), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "1 utterance id(s) occur more than once" in err
    assert json.loads(out.strip().splitlines()[-1])["utterances"] == 2  # both scored all the same


def test_transcribe_goes_on_after_a_bad_file_and_exits_non_zero(trained, tiny_corpus, tmp_path, capsys):
    good = json.loads((tiny_corpus / "valid.jsonl").read_text().splitlines()[0])["audio_filepath"]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all")
    stereo8k = tmp_path / "stereo8k.wav"
    data, rate = sf.read(good)
    sf.write(str(stereo8k), np.stack([data[::2], data[::2]], axis=1), rate // 2)
    code = main(["transcribe", "--model", str(trained), str(tmp_path / "missing.wav"), str(corrupt), good,
                 str(stereo8k)])
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [good, str(stereo8k)]
    assert "missing.wav: file not found" in err and "corrupt.wav: not readable as audio" in err
    assert "2 of 4 file(s) failed" in err


def test_combine_lets_the_majority_of_models_decide_in_evaluate_and_transcribe(trained, tiny_model_dir, tiny_corpus,
                                                                              tmp_path, capsys):
    # the trained model twice and an untrained one: every word the two copies agree on wins,
    # so the combination must give exactly the trained model's transcripts and score
    valid = str(tiny_corpus / "valid.jsonl")
    assert main(["evaluate", valid, "--model", str(trained), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", valid, "--model", str(tiny_model_dir), "--combine", str(trained), str(trained),
                 "--json", "--report", str(tmp_path / "rep")]) == 0
    out, err = capsys.readouterr()
    combined = json.loads(out.strip().splitlines()[-1])
    assert combined["wer"] == alone["wer"] and combined["decoder"].startswith("ROVER of 3 systems")
    assert err.count(": WER ") == 3  # each system's own score
    audio = [json.loads(line)["audio_filepath"] for line in (tiny_corpus / "valid.jsonl").read_text().splitlines()]
    assert main(["transcribe", *audio, "--model", str(trained), "--format", "json", "-o", str(tmp_path / "a")]) == 0
    assert main(["transcribe", *audio, "--model", str(tiny_model_dir), "--combine", str(trained), str(trained),
                 "--format", "json", "-o", str(tmp_path / "c")]) == 0
    assert main(["transcribe", *audio, "--model", str(tiny_model_dir), "--format", "json", "-o",
                 str(tmp_path / "u")]) == 0
    texts = {d: [json.loads(p.read_text())["text"] for p in sorted((tmp_path / d).iterdir())] for d in "acu"}
    assert texts["u"] != texts["a"]  # the untrained model, listed first, would win every tie
    for name in sorted(p.name for p in (tmp_path / "a").iterdir()):
        a, c = (json.loads((tmp_path / d / name).read_text()) for d in ("a", "c"))
        assert c["text"] == a["text"] and c["words"] == a["words"]  # with the trained model's times
    assert main(["transcribe", "-", "--combine", str(trained)]) == 2
    assert "not with --combine" in capsys.readouterr().err
    assert main(["transcribe", audio[0], "--model", str(trained), "--combine", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_python_api_transcribes_paths_and_arrays(trained, tiny_corpus):
    import asr

    good = json.loads((tiny_corpus / "valid.jsonl").read_text().splitlines()[0])["audio_filepath"]
    model = asr.load_model(trained)
    from_path = model.transcribe(good)
    data, rate = sf.read(good)
    from_array = model.transcribe(data, sample_rate=rate)
    assert from_path.text == from_array.text
    assert from_path.duration == pytest.approx(len(data) / rate)
    for word in from_path.words:
        assert 0 <= word.start < word.end <= from_path.duration + 0.05


def test_a_missing_model_directory_is_a_one_line_error(tmp_path, capsys):
    assert main(["transcribe", "--model", str(tmp_path / "nope"), "x.wav"]) == 2
    assert "model directory not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa", "--blank-penalties", "0,one"],
    ["lm", "mix", "a.arpa", "b.arpa", "-o", "mix.arpa", "--weights", "0.5,half"],
    ["synthesize", "text.txt", "out", "--freq-scale", "1,x"],
    ["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa", "--lm-weights="],  # an empty grid
    ["tune-rescoring", "dev.jsonl", "--model", "m", "--combine", "b", "-o", "r.yaml", "--weights=nan"],
])
def test_a_malformed_number_list_is_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "expected comma-separated numbers, got" in capsys.readouterr().err


def test_negative_rescoring_weights_are_refused_before_any_work(capsys):
    assert main(["tune-rescoring", "dev.jsonl", "--model", "m", "--combine", "b", "-o", "r.yaml",
                 "--weights=-1,0.5"]) == 2
    assert "--weights are each system's share of the score: at least 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag", [
    (["transcribe", "a.wav", "--threads", "-1"], "--threads"),
    (["transcribe", "a.wav", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "dev.jsonl", "--batch-seconds", "-5"], "--batch-seconds"),
    (["lm", "build", "text.txt", "-o", "lm.arpa", "--order", "0"], "--order"),
    (["lm", "rnn", "text.txt", "-o", "rnnlm", "--epochs", "nan"], "--epochs"),
])
def test_a_count_or_size_below_one_is_refused_naming_the_option(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}" in err
    assert "must be above 0" in err or "must be at least 0" in err or "expected a whole number" in err


def test_lm_rnn_help_gives_the_defaults_that_training_uses():
    import argparse

    from asr.cli import build_parser
    from asr.rnnlm import RNNLMOptions

    def subparser(parser, name):
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return action.choices[name]

    rnn, defaults = subparser(subparser(build_parser(), "lm"), "rnn"), RNNLMOptions()
    helps = {a.dest: a.help for a in rnn._actions}
    for name in ("epochs", "hidden_size", "num_layers", "dropout", "seed", "lr", "checks_per_epoch", "halvings", "min_count"):
        assert helps[name].endswith(f"(default {getattr(defaults, name)})"), name
    assert f"times {defaults.lr_decay} each epoch" in helps["lr"]


@pytest.mark.parametrize("argv, overrides", [
    (["c.yaml", "--gpus", "4", "train.lr=1e-3", "model.cell=gru"], ["train.lr=1e-3", "model.cell=gru"]),
    (["c.yaml", "train.lr=1e-3", "--resume", "model.cell=gru", "train.lr=2e-3"],
     ["train.lr=1e-3", "model.cell=gru", "train.lr=2e-3"]),  # in the order given: the last one wins
])
def test_train_takes_overrides_before_and_after_its_options(argv, overrides):
    from asr.cli import build_parser, parse_args

    args = parse_args(build_parser(), ["train", *argv])
    assert args.overrides == overrides and args.config == "c.yaml"


def test_train_still_refuses_an_option_it_does_not_have_among_overrides(capsys):
    from asr.cli import build_parser, parse_args

    with pytest.raises(SystemExit):
        parse_args(build_parser(), ["train", "c.yaml", "--gpus", "2", "train.lr=1", "--bogus"])
    assert "asr train: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_the_console_script_runs(tmp_path):
    exe = shutil.which("asr", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("asr")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "asr.cli", "--help"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for sub in ("prepare", "train", "evaluate", "transcribe"):
        assert sub in out


def test_commands_that_need_no_model_start_without_torch(tmp_path):
    # Importing torch costs seconds; an LM or download error should not pay for it.
    code = ("import sys; from asr.cli import main; "
            f"assert main(['lm', 'perplexity', '{tmp_path / 'none.arpa'}', '--texts', 'x']) == 2; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert "none.arpa: language model file not found" in out.stderr  # the LMs are checked before the text


@pytest.mark.parametrize("argv", [["--help"], ["transcribe", "--help"], ["plot", "alignment", "--help"]])
def test_help_starts_without_torch_though_it_lists_the_decoders(argv):
    # The --decoder choices must not pull asr.transcribe (and torch, seconds) into `asr --help`.
    code = ("import sys\nfrom asr.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "False"
    assert "usage: asr" in out.stdout


def test_the_decoder_option_offers_exactly_the_decoders_the_library_accepts():
    import argparse

    from asr import DECODERS
    from asr.cli import build_parser

    def decoder_choices(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from decoder_choices(sub, f"{path} {name}")
            elif action.dest == "decoder":
                yield path, list(action.choices)

    found = dict(decoder_choices(build_parser(), "asr"))
    assert {"asr evaluate", "asr transcribe", "asr plot alignment"} <= set(found)
    assert {path: choices for path, choices in found.items() if choices != list(DECODERS)} == {}


def test_an_unexpected_error_is_not_hidden_as_a_user_error(monkeypatch):
    import asr.cli_lm as cli_lm

    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setattr(cli_lm, "cmd_lm_perplexity", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["lm", "perplexity", "x.arpa", "--texts", "y"])


def test_models_load_with_the_cyclic_collector_paused_and_it_is_back_on_after():
    import gc

    from asr import cli_systems

    seen = []
    paused = cli_systems.cyclic_gc_paused(lambda fail=False: seen.append(gc.isenabled()) or (fail and 1 / 0))
    assert gc.isenabled()
    paused()
    with pytest.raises(ZeroDivisionError):  # a model that fails to load: the collector is back on too
        paused(True)
    assert seen == [False, False] and gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        paused()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("argv", [
    ["evaluate", "dev.jsonl"], ["transcribe", "a.wav"], ["tune-rescoring", "dev.jsonl", "--model", "m", "-o", "r.yaml"],
    ["priors", "model", "train.jsonl"], ["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa"],
    ["lm", "rnn", "text.txt", "-o", "rnnlm"],
])
def test_every_command_that_runs_a_model_takes_threads_and_sets_them_before_it_runs(argv, monkeypatch):
    import torch

    import asr.cli

    parser = asr.cli.build_parser()
    monkeypatch.setattr(asr.cli, "build_parser", lambda: parser)
    seen = []
    for action in parser._subparsers._group_actions[0].choices.values():  # every command: record, don't run
        action.set_defaults(func=lambda args: seen.append(torch.get_num_threads()) or 0)
        for sub in getattr(action, "_subparsers", None) and action._subparsers._group_actions[0].choices.values() or []:
            sub.set_defaults(func=lambda args: seen.append(torch.get_num_threads()) or 0)
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    try:
        assert main(argv + ["--threads", str(wanted)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [wanted]


def test_an_os_error_is_one_line_naming_the_file_and_the_errno(monkeypatch, capsys):
    import asr.cli_lm as cli_lm

    def unwritable(args):
        raise PermissionError(errno.EACCES, "Permission denied", "ro/lm.arpa")

    monkeypatch.setattr(cli_lm, "cmd_lm_perplexity", unwritable)
    assert main(["lm", "perplexity", "x.arpa", "--texts", "y"]) == 2
    assert capsys.readouterr().err == "asr: ro/lm.arpa: Permission denied (EACCES)\n"


def test_a_file_where_an_output_folder_must_be_made_is_called_so(tmp_path, capsys):
    # mkdir's "File exists" (plot training makes its output's folder) said too little
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.jsonl").write_text('{"epoch": 1, "train_loss": 2.0}\n')
    (tmp_path / "a_file").write_text("x")
    assert main(["plot", "training", str(tmp_path / "run"), "-o", str(tmp_path / "a_file" / "c.png")]) == 2
    assert capsys.readouterr().err == f"asr: {tmp_path / 'a_file'}: a file where a folder is needed (EEXIST)\n"


@pytest.mark.parametrize("argv", [
    ["evaluate", "{manifest}", "-o", "{blocked}/hyp.txt"],
    ["evaluate", "{manifest}", "--report", "{blocked}/report"],
    ["lm", "tune", "{manifest}", "--model", "{blocked}/model", "--lm", "lm.arpa"],
    ["priors", "{blocked}/model", "{manifest}"],
    ["tune-rescoring", "{manifest}", "--model", "m", "--combine", "b", "-o", "{blocked}/r.yaml"],
    ["lm", "build", "{manifest}", "-o", "{blocked}/lm.arpa"],
    ["lm", "rnn", "{manifest}", "-o", "{blocked}/rnnlm"],
    ["train", "configs/small.yaml", "train.train_manifest={manifest}", "train.output_dir={blocked}/run"],
    ["export", "{model}", "{blocked}/model"],
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(argv, tiny_corpus, tiny_model_dir, tmp_path,
                                                                      monkeypatch, capsys):
    import asr.data
    import asr.lm
    import asr.model_dir
    import asr.rnnlm
    import asr.train

    def work(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    for module, name in ((asr.data, "read_manifest"), (asr.lm, "build_lm"), (asr.rnnlm, "train_rnnlm"),
                         (asr.train, "train"), (asr.model_dir, "save_model_dir")):
        monkeypatch.setattr(module, name, work)
    blocked = tmp_path / "a_file"  # a file where a folder should be (the tests' root user can write any folder)
    blocked.write_text("x")
    values = {"manifest": tiny_corpus / "valid.jsonl", "blocked": blocked, "model": tiny_model_dir}
    assert main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"asr: {blocked}/") and "cannot write here" in err and len(err.splitlines()) == 1


def test_evaluate_output_is_written_whole_renamed_into_place(tiny_corpus, tiny_model_dir, tmp_path, monkeypatch):
    import os

    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renamed.append(str(dst)) or replace(src, dst))
    (tmp_path / "hyp.txt").write_text("an earlier run\n")
    assert main(["evaluate", str(tiny_corpus / "valid.jsonl"), "--model", str(tiny_model_dir), "--device", "cpu",
                 "--decoder", "greedy", "-o", str(tmp_path / "hyp.txt")]) == 0
    assert renamed == [str(tmp_path / "hyp.txt")]
    assert (tmp_path / "hyp.txt").read_text().count("\tHYP: ") == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.txt"]


def test_sigterm_ends_a_command_like_ctrl_c_removing_what_it_was_writing(tmp_path, monkeypatch, capsys):
    import signal

    import asr.cli_lm as cli_lm
    from asr.atomic import atomic_open

    def killed(args):
        with atomic_open(tmp_path / "lm.arpa") as f:
            f.write("half an LM")
            os.kill(os.getpid(), signal.SIGTERM)  # kill, docker stop, a SLURM time limit
            time.sleep(5)  # (the handler runs at once)
        return 0

    def not_handled(signum, frame):
        raise AssertionError("asr left SIGTERM to the default: the process would die with no message")

    monkeypatch.setattr(cli_lm, "cmd_lm_perplexity", killed)
    before = signal.signal(signal.SIGTERM, not_handled)
    try:
        assert main(["lm", "perplexity", "x.arpa", "--texts", "y"]) == 143
        assert signal.getsignal(signal.SIGTERM) is not_handled  # main puts back the handler it found
    finally:
        signal.signal(signal.SIGTERM, before)
    assert capsys.readouterr().err == "asr: terminated\n"
    assert list(tmp_path.iterdir()) == []


def test_export_force_onto_a_symlink_replaces_the_model_it_points_to(tiny_model_dir, tmp_path, capsys):
    shutil.copytree(tiny_model_dir, tmp_path / "v1")
    (tmp_path / "v1" / "stale.txt").write_text("from the old model")
    (tmp_path / "current").symlink_to(tmp_path / "v1")
    assert main(["export", str(tiny_model_dir), str(tmp_path / "current"), "--half", "--force"]) == 0
    assert (tmp_path / "current").is_symlink() and not (tmp_path / "v1" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1"]  # no .current.old-PID beside it


def test_a_tilde_after_an_equals_sign_is_the_home_directory_as_the_shell_makes_it(monkeypatch):
    from asr.cli import build_parser

    monkeypatch.setenv("HOME", "/home/me")
    args = build_parser().parse_args(["evaluate", "~/dev.jsonl", "--lm=~/lm.arpa", "--lexicon=~/lex.txt",
                                      "--model=~/m", "--combine", "~/m2", "--report=~/rep", "-o", "~/hyp.txt"])
    assert (args.manifest, args.lm, args.lexicon, args.model, args.combine, args.report, args.output) == (
        "/home/me/dev.jsonl", "/home/me/lm.arpa", "/home/me/lex.txt", "/home/me/m", ["/home/me/m2"],
        "/home/me/rep", "/home/me/hyp.txt")
    args = build_parser().parse_args(["lm", "tune", "dev.jsonl", "--model=~/m", "--lm=~/lm.arpa", "--lexicon=none"])
    assert (args.model, args.lm, args.lexicon) == ("/home/me/m", "/home/me/lm.arpa", "none")
    args = build_parser().parse_args(["lm", "rnn", "~/t.txt", "--output=~/rnnlm", "--dev=~/dev.txt"])
    assert (args.texts, args.output, args.dev) == (["/home/me/t.txt"], "/home/me/rnnlm", ["/home/me/dev.txt"])
    assert build_parser().parse_args(["transcribe", "-", "--output-dir=~/out"]).files == ["-"]


def test_transcribing_into_the_audio_s_own_folder_keeps_a_reference_transcript_there_unless_forced(
        tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(str(folder / "a.wav"), 0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    (folder / "a.txt").write_text("THE REFERENCE\n")
    assert main(["transcribe", str(folder), "--model", "no-such-model", "-o", str(folder)]) == 2  # before it loads
    assert (folder / "a.txt").read_text() == "THE REFERENCE\n"
    assert "a.txt: exists beside the audio (a reference transcript?); not replaced" in capsys.readouterr().err
    # elsewhere, a rerun replaces its own earlier outputs
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["transcribe", str(folder), "--model", str(tiny_model_dir), "-o", str(out)]) == 0
    assert main(["transcribe", str(folder), "--model", str(tiny_model_dir), "-o", str(folder), "--force"]) == 0
    assert (folder / "a.txt").read_text() == (out / "a.txt").read_text() != "THE REFERENCE\n"


def test_a_file_of_silence_is_named_on_stderr_with_its_empty_transcript(tiny_model_dir, tmp_path, capsys):
    sf.write(str(tmp_path / "quiet.wav"), np.zeros(16000, dtype=np.float32), 16000)
    assert main(["transcribe", str(tmp_path / "quiet.wav"), "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'quiet.wav'}\t\n"
    assert f"asr: {tmp_path / 'quiet.wav'}: no sound above -80 dBFS; nothing transcribed" in captured.err


def test_a_named_pipe_cannot_feed_several_systems_and_is_refused_by_name(tiny_model_dir, tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "pipe.wav")  # never opened: the refusal comes first
    assert main(["transcribe", str(tmp_path / "pipe.wav"), "--model", str(tiny_model_dir), "--decoder", "greedy",
                 "--combine", str(tiny_model_dir), str(tiny_model_dir)]) == 2
    assert f"{tmp_path / 'pipe.wav'}: a pipe can be read only once, so not with --combine" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag, message", [
    (["combine", "a", "b", "-o", "x", "--weights=-1,1"], "--weights", "expected votes of at least 0, not all 0"),
    (["combine", "a", "b", "-o", "x", "--weights=0,0"], "--weights", "expected votes of at least 0, not all 0"),
    (["compare", "a", "b", "--limit", "-1"], "--limit", "must be at least 0"),
])
def test_negative_votes_or_limits_are_refused_naming_the_option(argv, flag, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}" in err and message in err


def test_a_folder_of_symlinked_audio_keeps_its_reference_transcripts_too(tiny_model_dir, tmp_path, capsys):
    audio = tmp_path / "elsewhere" / "a.wav"
    audio.parent.mkdir()
    sf.write(str(audio), 0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "u1.wav").symlink_to(audio)
    (folder / "u1.txt").write_text("THE REFERENCE\n")
    assert main(["transcribe", str(folder), "--model", str(tiny_model_dir), "-o", str(folder)]) == 2
    assert (folder / "u1.txt").read_text() == "THE REFERENCE\n"
    assert "u1.txt: exists beside the audio" in capsys.readouterr().err


def test_the_hotwords_help_says_a_file_line_may_hold_several_comma_separated_phrases(capsys):
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # as one line, however argparse wrapped it
    assert "a file (a phrase a line, or several comma-separated) or 'a,b c'" in help_text


def test_a_hotword_weight_without_hotwords_is_refused_in_one_line(tiny_model_dir, tmp_path, capsys):
    # it used to switch to beam search and boost nothing
    sf.write(str(tmp_path / "a.wav"), 0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    assert main(["transcribe", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir),
                 "--hotword-weight", "3"]) == 2
    assert capsys.readouterr().err == "asr: --hotword-weight needs --hotwords\n"


@pytest.mark.parametrize("argv, command", [
    (["transcribe", "x.wav", "--no-such-flag"], "asr transcribe"),
    (["lm", "tune", "dev.jsonl", "--model", "m", "--lm", "lm.arpa", "--bogus"], "asr lm tune"),
    (["plot", "training", "run", "-o", "c.png", "--bogus"], "asr plot training"),
    (["prepare", "kaldi", "data", "out.jsonl", "--bogus"], "asr prepare kaldi"),
    (["--bogus", "transcribe", "x.wav"], "asr"),  # given before the command: the top level's
])
def test_an_unknown_option_is_named_under_the_usage_of_the_command_it_was_given_to(argv, command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"usage: {command} ")
    assert f"\n{command}: error: unrecognized arguments: {argv[-1] if command != 'asr' else argv[0]}\n" in err
