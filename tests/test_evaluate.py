"""Scoring a manifest as asr transcribe would transcribe its files: silence gets no words,
long utterances are cut at pauses; tuning sees silence as evaluate does."""

import numpy as np
import pytest
import soundfile as sf

from asr.data import Utterance
from asr.evaluate import evaluate
from asr.text import normalize_text
from asr.tuning import model_outputs
from tests.conftest import syllabic_tone
from tests.test_rescoring import packages  # noqa: F401 (a fixture)
from tests.test_transcribe import RATE, long_file, speller  # noqa: F401 (a fixture)


def test_a_silent_utterance_gets_the_empty_hypothesis_without_a_model_run(tiny_model_dir, tmp_path):
    sf.write(str(tmp_path / "silence.wav"), np.zeros(5 * RATE, dtype=np.float32), RATE)
    t = speller(tiny_model_dir)
    t.transcribe_waveforms = lambda waves: pytest.fail("digital silence reached the model")
    result = evaluate(t, [Utterance(str(tmp_path / "silence.wav"), 5.0, "hello world")])
    assert [u.hypothesis for u in result.utterances] == [""] and result.words.deletions == 2
    assert result.audio_seconds == pytest.approx(5.0)
    assert t.transcribe(str(tmp_path / "silence.wav")).text == ""  # as transcribe has it


def test_tuning_scores_a_silent_utterance_as_empty_without_a_model_run(tiny_model_dir, tmp_path):
    sf.write(str(tmp_path / "silence.wav"), np.zeros(2 * RATE, dtype=np.float32), RATE)
    sf.write(str(tmp_path / "tone.wav"), syllabic_tone(1.0), RATE)
    t = speller(tiny_model_dir)
    batches, skipped, silent = model_outputs(t, [Utterance(str(tmp_path / "silence.wav"), 2.0, "Hello"),
                                                 Utterance(str(tmp_path / "tone.wav"), 1.0, "world")])
    assert silent == ["hello"] and skipped == []
    assert [refs for _, _, refs in batches] == [["world"]]


@pytest.mark.parametrize("manifest_seconds", [None, 1.0])  # as the file is; a manifest that says it is short
def test_a_long_utterance_is_scored_as_transcribe_transcribes_it(tiny_model_dir, long_file, manifest_seconds):
    seconds = sf.info(str(long_file)).duration
    t = speller(tiny_model_dir)
    expected = t.transcribe(str(long_file))
    seen = []
    run = t.transcribe_waveforms
    t.transcribe_waveforms = lambda waves: seen.extend(w.numel() for w in waves) or run(waves)
    result = evaluate(t, [Utterance(str(long_file), manifest_seconds or seconds, "ho ho")])
    assert seen and max(seen) <= 20 * RATE  # in segments of at most max_seconds, never whole
    assert result.utterances[0].hypothesis == normalize_text(expected.text) != ""
    assert result.audio_seconds == pytest.approx(seconds)


def test_short_utterances_keep_the_batched_path(tiny_model_dir, tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(str(paths[-1]), syllabic_tone(i + 1), RATE)
    t = speller(tiny_model_dir)
    batches = []
    run = t.transcribe_waveforms
    t.transcribe_waveforms = lambda waves: batches.append(len(waves)) or run(waves)
    result = evaluate(t, [Utterance(str(p), i + 1.0, "ho") for i, p in enumerate(paths)])
    assert batches == [3] and len(result.utterances) == 3


def test_evaluate_warns_that_references_with_no_words_after_normalization_give_no_rate(tiny_model_dir, tmp_path,
                                                                                       capsys):
    import json

    from asr.cli import main

    sf.write(str(tmp_path / "tone.wav"), syllabic_tone(1.0), RATE)
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": str(tmp_path / "tone.wav"), "duration": 1.0,
                                                  "text": "... !?"}) + "\n")
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "no words after normalization" in line]
    assert warning == [f"asr: warning: {tmp_path / 'm.jsonl'}: the references have no words after normalization, "
                       f"so no error rate can be given ({json.loads(captured.out.splitlines()[-1])['insertions']} "
                       "hypothesis word(s), all insertions)"]


def test_evaluate_warns_when_references_hold_characters_the_model_cannot_write(tiny_model_dir, tmp_path, capsys):
    import json

    from asr.cli import main
    from asr.model_dir import load_model_dir

    alphabet = set(load_model_dir(tiny_model_dir, device="cpu").tokenizer.tokens)
    assert not {"7", "9"} & alphabet  # digits: as for a model trained on spelled-out numbers
    sf.write(str(tmp_path / "tone.wav"), syllabic_tone(1.0), RATE)
    a, b = sorted(c for c in alphabet if c.isalpha() and len(c) == 1)[:2]
    rows = [{"id": f"u{i}", "audio_filepath": str(tmp_path / "tone.wav"), "duration": 1.0, "text": text}
            for i, text in enumerate((f"{a}{b} 7 {a} 9", f"{b} 77", a * 2))]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [f"asr: warning: {tmp_path / 'm.jsonl'}: 2 reference(s) hold characters the model has no token for "
                        "('7' '9'): they count as errors whatever the model hears"]


def test_an_utterance_without_an_id_gets_the_same_id_from_any_working_folder_so_its_reports_compare(
        tiny_model_dir, tmp_path, monkeypatch, capsys):
    import json

    from asr.cli import main
    from asr.compare import compare_reports

    (tmp_path / "data" / "audio").mkdir(parents=True)
    sf.write(str(tmp_path / "data" / "audio" / "tone.wav"),
             syllabic_tone(1.0), RATE)
    (tmp_path / "data" / "m.jsonl").write_text(json.dumps({"audio_filepath": "audio/tone.wav", "duration": 1.0,
                                                           "text": "hello"}) + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "data/m.jsonl", "--model", str(tiny_model_dir), "--report", "a"]) == 0
    monkeypatch.chdir(tmp_path / "data")
    assert main(["evaluate", "m.jsonl", "--model", str(tiny_model_dir), "--report", "../b"]) == 0
    comparison = compare_reports(tmp_path / "a", tmp_path / "b")
    assert [u.id for u in comparison.a.utterances] == [u.id for u in comparison.b.utterances]
    assert comparison.only_a == comparison.only_b == []


def test_evaluate_names_a_few_unreadable_files_and_totals_them_rather_than_listing_a_whole_corpus(
        tiny_model_dir, tmp_path, capsys):
    import json

    from asr.cli import main
    from asr.user_warnings import SHOWN

    sf.write(str(tmp_path / "tone.wav"), syllabic_tone(1.0), RATE)
    rows = [{"audio_filepath": str(tmp_path / "tone.wav"), "duration": 1.0, "text": "hello", "id": "ok"}]
    rows += [{"audio_filepath": str(tmp_path / f"gone{i}.wav"), "duration": 1.0, "text": "hello", "id": f"u{i}"}
             for i in range(SHOWN + 5)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir)]) == 1  # as before: 1
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("asr: skipped ")] == [
        f"asr: skipped {tmp_path / f'gone{i}.wav'}: file not found" for i in range(SHOWN)]
    assert f"asr: {SHOWN + 5} of {SHOWN + 6} utterances skipped (unreadable audio, or a failed search): not scored (5 more not listed)" in err


def test_two_utterances_of_one_missing_file_are_two_skipped_alone_or_combined(tiny_model_dir, tmp_path, capsys):
    import json

    from asr.cli import main

    sf.write(str(tmp_path / "tone.wav"), syllabic_tone(1.0), RATE)
    gone = str(tmp_path / "gone.wav")
    rows = [{"audio_filepath": str(tmp_path / "tone.wav"), "duration": 1.0, "text": "hello", "id": "ok"},
            {"audio_filepath": gone, "duration": 1.0, "text": "hello", "id": "g1"},  # two segments of one file
            {"audio_filepath": gone, "duration": 1.0, "text": "world", "id": "g2"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # once per utterance, however many systems skipped it (it was 1 of 3, while the JSON said 2)
    for combine in ([], ["--combine", str(tiny_model_dir)]):
        assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--json",
                     *combine]) == 1
        out, err = capsys.readouterr()
        assert json.loads(out.splitlines()[1])["skipped"] == 2
        assert "asr: 2 of 3 utterances skipped" in err
        assert err.count(f"asr: skipped {gone}: file not found") == 2


def test_an_id_less_row_s_id_is_its_audio_path_made_absolute_with_links_not_followed(tmp_path, monkeypatch):
    from asr.evaluate import utterance_id

    (tmp_path / "store.wav").write_bytes(b"")
    for name in ("a.wav", "b.wav"):  # a corpus of links (git-annex, DVC): two rows, one stored file
        (tmp_path / name).symlink_to(tmp_path / "store.wav")
    monkeypatch.chdir(tmp_path)
    ids = [utterance_id(Utterance(name, 1.0, "hello")) for name in ("a.wav", "b.wav")]
    assert ids == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    assert utterance_id(Utterance("a.wav", 1.0, "hello", id="given")) == "given"


SEARCH_DIED = ("a beam search worker process died searching it alone, after twice on its batch (out of memory?); "
               "run again with fewer --decode-workers, or 1")


def _frames(model_dir, seconds: float) -> int:
    from asr.model_dir import load_model_dir

    return int(seconds / load_model_dir(model_dir, device="cpu").model.frame_shift)


def test_only_the_utterance_whose_search_kills_its_worker_alone_is_skipped_and_named_its_batch_is_scored_exit_1(
        tiny_model_dir, tmp_path, monkeypatch, capsys):
    import json

    from asr.cli import main
    from tests.conftest import write_sine
    from tests.test_search_workers import searches_that_kill_their_worker

    rows = [{"id": n, "audio_filepath": str(write_sine(tmp_path / f"{n}.wav", seconds=s)), "duration": s,
             "text": "hello"} for n, s in zip("abc", (1.0, 1.0, 3.0))]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=_frames(tiny_model_dir, 2.0))  # c's
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--decoder", "beam",
                 "--beam-size", "4", "--decode-workers", "2", "--batch-seconds", "12", "--json"]) == 1  # one batch
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert (summary["utterances"], summary["skipped"], summary["audio_seconds"]) == (2, 1, 2.0)
    assert [line for line in err.splitlines() if line.startswith("asr: skipped ")] == [
        f"asr: skipped {rows[2]['audio_filepath']}: {SEARCH_DIED}"]
    assert summary["searches_died"] == 1  # its decode seconds hold the searches that died: the RTF says so
    assert in_parent == []


def test_a_long_utterance_whose_segments_kill_the_beam_search_process_twice_is_not_scored(tiny_model_dir, tmp_path,
                                                                                           monkeypatch):
    from asr.model_dir import load_model_dir
    from asr.segmenter import SegmenterOptions
    from asr.transcribe import Transcriber
    from tests.conftest import write_sine
    from tests.test_search_workers import searches_that_kill_their_worker

    t = Transcriber(load_model_dir(tiny_model_dir), "beam", device="cpu", workers=2, beam_size=4,
                    segmenter=SegmenterOptions(max_seconds=2.0, min_seconds=1.0))  # 3 s: two segments, one batch
    short, long = (str(write_sine(tmp_path / f"{n}.wav", seconds=s)) for n, s in (("short", 1.0), ("long", 3.0)))
    searches_that_kill_their_worker(monkeypatch, longer_than=_frames(tiny_model_dir, 1.5))
    result = evaluate(t, [Utterance(short, 1.0, "hello"), Utterance(long, 3.0, "hello")])
    assert [u.audio_filepath for u in result.utterances] == [short] and result.skipped == [(long, SEARCH_DIED)]
    assert result.audio_seconds == pytest.approx(1.0)


def test_a_run_whose_searches_all_survive_says_no_search_died_though_files_were_unreadable(tiny_model_dir, tmp_path):
    from asr.model_dir import load_model_dir
    from asr.transcribe import Transcriber
    from tests.conftest import write_sine

    t = Transcriber(load_model_dir(tiny_model_dir), "beam", device="cpu", workers=2, beam_size=4)
    audio = str(write_sine(tmp_path / "a.wav", seconds=1.0))
    result = evaluate(t, [Utterance(audio, 1.0, "hello"), Utterance(str(tmp_path / "gone.wav"), 1.0, "hello")])
    assert (result.summary()["skipped"], result.summary()["searches_died"]) == (1, 0)
    summary = result.summary()  # nothing retried: the RTF is the wall time's, as it always was
    assert (summary["retry_seconds"], summary["retried_batches"]) == (0.0, 0)
    assert summary["rtf"] == round(result.decode_seconds / result.audio_seconds, 6)


def test_a_run_whose_search_worker_died_once_and_recovered_leaves_the_broken_off_search_out_of_its_rtf(
        tiny_model_dir, tmp_path, monkeypatch):
    from asr.model_dir import load_model_dir
    from asr.transcribe import Transcriber
    from tests.conftest import write_sine
    from tests.test_search_workers import searches_that_kill_their_worker

    t = Transcriber(load_model_dir(tiny_model_dir), "beam", device="cpu", workers=2, beam_size=4)
    audio = [str(write_sine(tmp_path / f"{n}.wav", seconds=1.0)) for n in "ab"]
    in_parent = searches_that_kill_their_worker(monkeypatch, longer_than=0, once=tmp_path / "killed", after=0.5)
    result = evaluate(t, [Utterance(path, 1.0, "hello") for path in audio])
    assert len(result.utterances) == 2 and result.skipped == []  # retried, and every search finished
    assert result.retried_batches == 1 and 0.5 <= result.retry_seconds < result.decode_seconds  # (wall time)
    summary = result.summary()
    assert (summary["retried_batches"], summary["retry_seconds"]) == (1, round(result.retry_seconds, 3))
    assert summary["rtf"] == round((result.decode_seconds - result.retry_seconds) / result.audio_seconds, 6)
    assert summary["rtf"] < result.decode_seconds / result.audio_seconds
    assert in_parent == []


def test_a_rescoring_run_leaves_out_what_worker_deaths_cost_any_of_its_systems_searches(packages, tmp_path,
                                                                                       monkeypatch):
    from asr.rescoring import RescoringOptions, RescoringTranscriber
    from asr.transcribe import load_model
    from tests.conftest import write_sine
    from tests.test_search_workers import searches_that_kill_their_worker

    first, second = packages
    rescoring = RescoringTranscriber([load_model(first, workers=2),
                                      load_model(second, decoder="beam", workers=2, beam_size=4)],
                                     RescoringOptions(weights=(1.0, 1.0), nbest=2))
    audio = [str(write_sine(tmp_path / f"{n}.wav", seconds=1.0)) for n in "ab"]
    searches_that_kill_their_worker(monkeypatch, longer_than=0, once=tmp_path / "killed", after=0.5,
                                    only=rescoring.searches[1])  # the second system's, not the transcriber's own
    result = evaluate(rescoring, [Utterance(path, 1.0, "hello") for path in audio])
    assert len(result.utterances) == 2 and result.retried_batches == 1
    assert result.retry_seconds == rescoring.searches[1].lost_seconds >= 0.5
    assert result.rtf == pytest.approx((result.decode_seconds - result.retry_seconds) / result.audio_seconds)
