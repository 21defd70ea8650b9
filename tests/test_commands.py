"""Each subcommand end to end as a user runs it: what it writes, what it refuses, its exit status."""

import json
import shutil

import pytest

from asr.cli import main


def manifest_of(tiny_corpus, path, rows: int = 2, extra=()):
    """A manifest of the first ``rows`` valid utterances (real audio), then ``extra`` entries."""
    lines = (tiny_corpus / "valid.jsonl").read_text().splitlines()[:rows] + [json.dumps(e) for e in extra]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def word_lm(tmp_path):
    text = tmp_path / "lm_text.txt"
    text.write_text("hello world\nhello there world\nthe world says hello\n")
    assert main(["lm", "build", str(text), "-o", str(tmp_path / "lm.arpa"), "--order", "2"]) == 0
    return tmp_path / "lm.arpa"


def test_evaluate_refuses_to_write_its_hypotheses_over_the_manifest_it_reads(tiny_model_dir, tiny_corpus, tmp_path,
                                                                             capsys):
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl")
    before = manifest.read_text()
    assert main(["evaluate", str(manifest), "--model", str(tiny_model_dir), "-o", str(manifest)]) == 2
    assert f"{manifest}: it is also the input {manifest}" in capsys.readouterr().err
    assert manifest.read_text() == before


def test_evaluate_refuses_an_output_that_is_a_link_to_its_manifest(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl")
    before = manifest.read_text()
    (tmp_path / "hyp.txt").symlink_to(manifest)
    assert main(["evaluate", str(manifest), "--model", str(tiny_model_dir), "-o", str(tmp_path / "hyp.txt")]) == 2
    assert "it is also the input" in capsys.readouterr().err
    assert manifest.read_text() == before


def test_tune_rescoring_refuses_to_write_over_its_manifest_before_any_system_loads(tmp_path, capsys):
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "hi"}) + "\n")
    before = manifest.read_text()
    assert main(["tune-rescoring", str(manifest), "--model", str(tmp_path / "no_model"), "--combine",
                 str(tmp_path / "no_model2"), "-o", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "it is also the input" in err and "no_model" not in err
    assert manifest.read_text() == before


def test_lm_build_refuses_to_write_the_lm_over_one_of_its_texts(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("hello world\n")
    assert main(["lm", "build", str(text), "-o", str(text), "--order", "2"]) == 2
    assert f"{text}: it is also the input {text}" in capsys.readouterr().err
    assert text.read_text() == "hello world\n"


@pytest.mark.parametrize("command", [["lm", "mix", "{lm2}", "{lm2}", "--dev", "{text}", "-o", "{text}"],
                                     ["lm", "import-sphinx", "{lm}", "-o", "{lm}"]])
def test_lm_commands_refuse_to_write_over_an_input_they_read(command, word_lm, tmp_path, capsys):
    lm2 = tmp_path / "lm2.arpa"
    shutil.copy(word_lm, lm2)
    text = tmp_path / "lm_text.txt"
    before = {p: p.read_bytes() for p in (word_lm, lm2, text)}
    capsys.readouterr()
    argv = [a.format(lm=word_lm, lm2=lm2, text=text) for a in command]
    assert main(argv) == 2
    assert "it is also the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


def test_lm_prune_and_mix_may_replace_their_own_lm_in_place(word_lm, tmp_path):
    lm, other = tmp_path / "mine.arpa", tmp_path / "other.arpa"
    shutil.copy(word_lm, lm)
    shutil.copy(word_lm, other)
    assert main(["lm", "prune", str(lm), "-o", str(lm), "--threshold", "1e-2"]) == 0
    assert lm.read_bytes() != word_lm.read_bytes()  # pruned: an ARPA still, of fewer n-grams
    assert main(["lm", "mix", str(other), str(lm), "-o", str(other)]) == 0
    assert "\\data\\" in other.read_text() and "\\end\\" in other.read_text()  # the mix, whole


def kaldi_dir(tiny_corpus, path):
    """A one-utterance Kaldi data dir over a real audio file."""
    row = json.loads((tiny_corpus / "valid.jsonl").read_text().splitlines()[0])
    path.mkdir()
    (path / "wav.scp").write_text(f"u1 {row['audio_filepath']}\n")
    (path / "text").write_text(f"u1 {row['text']}\n")
    (path / "utt2spk").write_text("u1 s1\n")
    return path


def test_prepare_kaldi_refuses_to_write_the_manifest_over_the_data_dir_s_own_text(tiny_corpus, tmp_path, capsys):
    data = kaldi_dir(tiny_corpus, tmp_path / "train")
    before = (data / "text").read_text()
    assert main(["prepare", "kaldi", str(data), str(data / "text")]) == 2
    assert f"{data / 'text'}: it is also the input" in capsys.readouterr().err
    assert (data / "text").read_text() == before


def test_prepare_kaldi_into_a_directory_is_refused_naming_it_before_the_corpus_is_read(tiny_corpus, tmp_path,
                                                                                       monkeypatch, capsys):
    import asr.corpora

    data = kaldi_dir(tiny_corpus, tmp_path / "train")
    monkeypatch.setattr(asr.corpora, "import_kaldi_dir", lambda *a, **k: pytest.fail("the corpus was read"))
    (tmp_path / "out").mkdir()
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'out'}: is a directory" in err and ".tmp-" not in err


def test_prepare_into_a_folder_that_is_a_file_is_refused_before_the_corpus_is_read(tmp_path, monkeypatch, capsys):
    import asr.corpora

    monkeypatch.setattr(asr.corpora, "prepare_speechocean762", lambda *a, **k: pytest.fail("the corpus was read"))
    (tmp_path / "src").mkdir()
    (tmp_path / "out").write_text("")
    assert main(["prepare", "speechocean762", str(tmp_path / "src"), str(tmp_path / "out")]) == 2
    assert f"{tmp_path / 'out'}" in capsys.readouterr().err


def test_lm_tune_that_skipped_an_unreadable_utterance_names_it_and_stores_its_result(tiny_model_dir, tiny_corpus,
                                                                                      word_lm, tmp_path, capsys):
    # exit 0: a recipe goes on to evaluate with the settings (make would delete them on an error)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl", rows=1,
                           extra=[{"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0, "text": "hello"}])
    assert main(["lm", "tune", str(manifest), "--model", str(model), "--lm", str(word_lm), "--lm-weights", "0.5",
                 "--word-scores", "0", "--beam-size", "4", "--decode-workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"skipped {tmp_path / 'gone.wav'}" in err and "1 of 2 utterances skipped" in err
    assert "on 1 utterance," in out and (model / "decoding.yaml").is_file()


def test_export_refuses_a_lexicon_without_an_lm_rather_than_leave_it_out(tiny_model_dir, tmp_path, capsys):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("hello h e l l o |\n")
    assert main(["export", str(tiny_model_dir), str(tmp_path / "pkg"), "--lexicon", str(lexicon)]) == 2
    assert "--lexicon is packaged with an LM: give --lm too" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("output", ["rep", "rep/results.json", "rep/report.md"])
def test_evaluate_refuses_hypotheses_written_where_its_report_goes_before_it_decodes(output, tiny_corpus, tmp_path,
                                                                                   monkeypatch, capsys):
    import asr.evaluate

    monkeypatch.setattr(asr.evaluate, "evaluate", lambda *a, **k: pytest.fail("it decoded"))
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(manifest), "-o", output, "--report", "rep"]) == 2
    assert f"-o {output} is where --report rep writes its report: give another file" in capsys.readouterr().err


def test_evaluate_combine_prints_each_systems_rates_over_the_utterances_voted_on(tiny_model_dir, tiny_corpus,
                                                                                 tmp_path, monkeypatch, capsys):
    # the second system's search failed on u2: the first's rates beside the vote are u1's alone
    import asr.evaluate
    from asr.evaluate import Evaluation, UtteranceResult
    from asr.metrics import char_errors, word_errors

    def scored(rows):
        refs, hyps = [r.reference for r in rows], [r.hypothesis for r in rows]
        return Evaluation(rows, word_errors(refs, hyps), char_errors(refs, hyps), 2.0, 1.0)

    both = [UtteranceResult("u1", "u1.wav", "hello world", "hello world", "s"),
            UtteranceResult("u2", "u2.wav", "good bye", "bad buy", "s")]
    outcomes = iter([scored(both), scored(both[:1])])
    monkeypatch.setattr(asr.evaluate, "evaluate", lambda *a, **k: next(outcomes))
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl")
    main(["evaluate", str(manifest), "--model", str(tiny_model_dir), "--combine", str(tiny_model_dir), "--json"])
    rates = [line.split(": WER ")[1][:5] for line in capsys.readouterr().err.splitlines()
             if line.startswith(f"asr: {tiny_model_dir}: WER ")]
    assert rates == ["0.00%", "0.00%"]  # the first's is not 50.00%: u2 is not among the utterances voted on


def test_evaluate_combine_with_no_utterance_every_system_decoded_scores_nothing_and_fails(tiny_model_dir, tiny_corpus,
                                                                                          tmp_path, monkeypatch, capsys):
    # the systems' searches failed on different utterances: a vote over none would read as 0% WER
    import asr.evaluate
    from asr.evaluate import Evaluation, UtteranceResult
    from asr.metrics import char_errors, word_errors

    def scored(rows):
        refs, hyps = [r.reference for r in rows], [r.hypothesis for r in rows]
        return Evaluation(rows, word_errors(refs, hyps), char_errors(refs, hyps), 2.0, 1.0)

    outcomes = iter([scored([UtteranceResult("u1", "u1.wav", "hello world", "hello", "s")]),
                     scored([UtteranceResult("u2", "u2.wav", "good bye", "bad buy", "s")])])
    monkeypatch.setattr(asr.evaluate, "evaluate", lambda *a, **k: next(outcomes))
    manifest = manifest_of(tiny_corpus, tmp_path / "dev.jsonl")
    assert main(["evaluate", str(manifest), "--model", str(tiny_model_dir), "--combine", str(tiny_model_dir),
                 "--report", str(tmp_path / "rep")]) == 1
    out = capsys.readouterr()
    assert "no utterance was decoded by all 2 systems: nothing to vote on, nothing scored, no report written" in out.err
    assert "WER" not in out.out and not (tmp_path / "rep").exists()


def test_combine_refuses_to_write_over_one_of_the_reports_it_votes_among_even_with_force(tmp_path, capsys):
    from asr.report import build_report, write_report
    from asr.evaluate import UtteranceResult

    for name, hyp in (("a", "hello world"), ("b", "hello word")):
        rows = [UtteranceResult("u1", "u1.wav", "hello world", hyp, "spk")]
        write_report(build_report(rows, {"model": name}), tmp_path / name)
    before = (tmp_path / "b" / "results.json").read_text()
    assert main(["combine", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "b"), "--force"]) == 2
    assert f"{tmp_path / 'b'}: it is also the input {tmp_path / 'b'}" in capsys.readouterr().err
    assert (tmp_path / "b" / "results.json").read_text() == before


def test_combine_prints_each_reports_rates_over_the_utterances_it_voted_on(tmp_path, capsys):
    # b lacks u2, so the vote is over u1 alone: each system's WER beside the combined one is u1's
    from asr.report import build_report, write_report
    from asr.evaluate import UtteranceResult

    for name, hyps in (("a", ["hello world", "good bye"]), ("b", ["hello world"]), ("c", ["hello world"])):
        rows = [UtteranceResult(f"u{i + 1}", f"u{i + 1}.wav", ref, hyp, "spk")
                for i, (ref, hyp) in enumerate(zip(["hello world", "goodbye now"], hyps))]
        write_report(build_report(rows, {"model": name}), tmp_path / name)
    assert main(["combine", *(str(tmp_path / n) for n in "abc"), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    assert f"{tmp_path / 'a'}: WER 0.00%" in out.out  # not 60.00%: u2's errors are outside the vote
    assert "combined: WER 0.00%" in out.out
    assert "1 utterance(s) are not in every report" in out.err


def test_lm_rnn_refuses_to_replace_one_of_its_texts_with_the_lm_even_with_force(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("hello world\nhello there\n")
    assert main(["lm", "rnn", str(text), "-o", str(text), "--force", "--epochs", "1", "--hidden-size", "8"]) == 2
    assert f"{text}: it is also the input {text}" in capsys.readouterr().err
    assert text.read_text() == "hello world\nhello there\n"


def test_lm_rnn_refuses_to_replace_the_folder_its_text_is_in_even_with_force(tmp_path, capsys):
    (tmp_path / "lmdir").mkdir()
    text = tmp_path / "lmdir" / "corpus.txt"
    text.write_text("hello world\nhello there\n")
    assert main(["lm", "rnn", str(text), "-o", str(tmp_path / "lmdir"), "--force", "--epochs", "1",
                 "--hidden-size", "8"]) == 2
    assert f"{tmp_path / 'lmdir'}: it is also the input {text}" in capsys.readouterr().err
    assert text.read_text() == "hello world\nhello there\n"


WRITES_LM_TO = ("import sys; from asr.cli import main; print('before', flush=True); "
                "code = main(['lm', 'build', sys.argv[1], '-o', sys.argv[2], '--order', '2']); "
                "print('after', flush=True); sys.exit(code)")


@pytest.mark.parametrize("name", ["/dev/stdout", "/proc/self/fd/1"])
def test_lm_build_to_dev_stdout_redirected_to_a_file_writes_the_lm_between_the_prints(tmp_path, name):
    import subprocess
    import sys

    (tmp_path / "t.txt").write_text("hello world\nhello there\n")
    with open(tmp_path / "out.txt", "w") as out:  # as a shell's `> out.txt`
        done = subprocess.run([sys.executable, "-c", WRITES_LM_TO, str(tmp_path / "t.txt"), name],
                              stdout=out, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "out.txt").read_text()
    assert written.startswith("before\n") and "\\data\\" in written and written.endswith("after\n")


def test_output_to_a_descriptor_that_is_not_open_is_refused_before_any_work(tmp_path):
    import subprocess
    import sys

    (tmp_path / "t.txt").write_text("hello world\n")
    done = subprocess.run([sys.executable, "-c", WRITES_LM_TO, str(tmp_path / "t.txt"), "/dev/fd/7"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "/dev/fd/7: not an open descriptor: nothing to write to" in done.stderr


def test_transcribe_refuses_nbest_with_combine_before_any_model_loads(tmp_path, monkeypatch, capsys):
    import asr.commands

    monkeypatch.setattr(asr.commands, "systems_from", lambda args: pytest.fail("a model loaded"))
    (tmp_path / "a.wav").write_bytes(b"")
    assert main(["transcribe", str(tmp_path / "a.wav"), "--combine", str(tmp_path), "--nbest", "3"]) == 2
    assert "--nbest with --combine: a ROVER vote gives one transcript" in capsys.readouterr().err


def test_transcribe_refuses_a_named_pipe_given_twice_rather_than_wait_for_a_second_writer(tmp_path, monkeypatch,
                                                                                          capsys):
    import os

    import asr.commands

    monkeypatch.setattr(asr.commands, "systems_from", lambda args: pytest.fail("a model loaded"))
    os.mkfifo(tmp_path / "pipe.wav")  # never opened: the refusal comes first
    assert main(["transcribe", str(tmp_path / "pipe.wav"), str(tmp_path / "pipe.wav")]) == 2
    assert f"{tmp_path / 'pipe.wav'}: a pipe can be read only once" in capsys.readouterr().err


def test_transcribe_of_inputs_that_name_no_audio_says_so_without_loading_a_model(tmp_path, monkeypatch, capsys):
    import asr.commands

    monkeypatch.setattr(asr.commands, "systems_from", lambda args: pytest.fail("a model loaded"))
    (tmp_path / "empty").mkdir()
    assert main(["transcribe", str(tmp_path / "empty"), str(tmp_path / "*.flac")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'empty'}: no audio files in this folder" in err and "no file matches this pattern" in err
    assert "2 of 2 file(s) failed" in err


def test_export_of_a_package_with_its_own_lm_named_by_path_keeps_its_lexicon(tiny_model_dir, word_lm, tmp_path):
    # re-exporting at half precision: --lm PKG/lm.bin, a binary with no word list, searched with PKG's lexicon
    package = tmp_path / "pkg"
    assert main(["export", str(tiny_model_dir), str(package), "--lm", str(word_lm)]) == 0
    own_lm = next(p for p in package.iterdir() if p.name.startswith("lm."))
    assert main(["export", str(package), str(tmp_path / "half"), "--half", "--lm", str(own_lm)]) == 0
    assert (tmp_path / "half" / "lexicon.txt").read_text() == (package / "lexicon.txt").read_text() \
        if (package / "lexicon.txt").is_file() else not (tmp_path / "half" / "lexicon.txt").exists()
