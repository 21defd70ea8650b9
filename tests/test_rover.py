"""ROVER: several systems' hypotheses aligned into one word network, then a vote per slot."""

import json

import pytest

from asr.cli import main
from asr.evaluate import UtteranceResult
from asr.report import ReportError, build_report, load_report, write_report
from asr.results import Result, Segment, Word
from asr.rover import combine, combine_reports, combine_results, word_network


def test_the_majority_corrects_each_systems_own_error():
    # each system makes one different mistake; two of three are right in every slot
    assert combine(["the cat sat down", "the bat sat down", "the cat sat"]) == "the cat sat down"
    assert combine(["a b c", "a x c", "a x"]) == "a x c"


def test_network_has_a_slot_per_aligned_word_and_empty_entries_for_gaps():
    net = word_network(["the cat sat", "the cat sat down", "cat sat"])
    assert net == [("the", "the", None), ("cat", "cat", "cat"), ("sat", "sat", "sat"), (None, "down", None)]


def test_hypotheses_shifted_by_a_word_line_up_on_the_words_they_share_as_sclite_aligns_them():
    # two substitutions (q for p, r for q) cost more than a deletion, a match and an insertion
    assert word_network(["p q", "q", "q r"]) == [("p", None, None), ("q", "q", "q"), (None, None, "r")]
    assert combine(["p q", "q", "q r"]) == "q"  # p and r: one vote of three each
    assert combine(["the cat sat", "cat sat on", "the cat sat on"]) == "the cat sat on"


def test_a_word_only_one_system_inserted_is_voted_out_but_kept_when_most_agree():
    assert combine(["go home", "go home now", "go home"]) == "go home"
    assert combine(["go home", "go home now", "go home now"]) == "go home now"


def test_a_word_most_systems_deleted_is_dropped():
    assert combine(["one two three", "one three", "one three"]) == "one three"


def test_ties_go_to_the_system_listed_first():
    assert combine(["red car", "blue car"]) == "red car"
    assert combine(["blue car", "red car"]) == "blue car"


def test_weights_let_a_better_system_outvote_two_others():
    hyps = ["red car", "blue car", "blue car"]
    assert combine(hyps) == "blue car"
    assert combine(hyps, weights=[3, 1, 1]) == "red car"
    with pytest.raises(ValueError, match="2 weights for 3 hypotheses"):
        combine(hyps, weights=[1, 1])


def test_weights_that_tie_but_for_float_rounding_still_give_the_tie_to_the_system_listed_first():
    assert 0.1 + 0.2 != 0.3  # the two "blue" votes sum above the one "red" vote, in floats
    assert combine(["red car", "blue car", "blue car"], weights=[0.3, 0.1, 0.2]) == "red car"
    assert combine(["red car", "blue car", "blue car"], weights=[3, 1, 2]) == "red car"  # the same votes, whole


def test_empty_hypotheses_combine_to_what_the_others_agree_on():
    assert combine(["", "yes", "yes"]) == "yes"
    assert combine(["", "", "yes"]) == ""
    assert combine(["", ""]) == ""


def _report(tmp_path, name, pairs):
    rows = [UtteranceResult(i, f"{i}.wav", ref, hyp, "spk") for i, ref, hyp in pairs]
    return write_report(build_report(rows, {"model": name}), tmp_path / name)


def test_combining_reports_scores_the_vote_over_the_utterances_all_reports_hold(tmp_path):
    a = _report(tmp_path, "a", [("u1", "the cat sat", "the bat sat"), ("u2", "hello world", "hello word"),
                                ("u3", "only here", "only here")])
    b = _report(tmp_path, "b", [("u1", "the cat sat", "the cat sat"), ("u2", "hello world", "yellow world")])
    c = _report(tmp_path, "c", [("u1", "the cat sat", "the cat mat"), ("u2", "hello world", "hello world")])
    report, notes = combine_reports([load_report(d) for d in (a, b, c)], [a, b, c])
    assert [(u.id, u.hypothesis) for u in report.utterances] == [("u1", "the cat sat"), ("u2", "hello world")]
    assert report.summary()["word_errors"] == 0  # each system alone has 1 or 2 errors in these 5 words
    assert notes == ["1 utterance(s) are not in every report and were left out"]
    assert report.meta["systems"] == ["a", "b", "c"]


def test_reports_of_different_test_sets_are_refused_by_name(tmp_path):
    a = _report(tmp_path, "a", [("u1", "the cat sat", "the cat sat")])
    b = _report(tmp_path, "b", [("u1", "a dog ran", "a dog ran")])
    with pytest.raises(ReportError, match=r"b: 1 utterance\(s\) have another reference.*u1"):
        combine_reports([load_report(a), load_report(b)], [a, b])
    with pytest.raises(ReportError, match="at least two"):
        combine_reports([load_report(a)], [a])


def test_reports_with_no_utterance_in_common_are_refused_not_combined_into_nothing(tmp_path, capsys):
    a = _report(tmp_path, "a", [("u1", "the cat sat", "the cat sat")])
    b = _report(tmp_path, "b", [("v1", "the cat sat", "the cat sat")])
    assert main(["combine", str(a), str(b), "-o", str(tmp_path / "rover")]) == 2
    assert "no utterance ids in common" in capsys.readouterr().err
    assert not (tmp_path / "rover").exists()


def test_combine_command_writes_a_report_that_compare_can_read(tmp_path, capsys):
    a = _report(tmp_path, "a", [("u1", "the cat sat down", "the bat sat down")])
    b = _report(tmp_path, "b", [("u1", "the cat sat down", "the cat sat")])
    c = _report(tmp_path, "c", [("u1", "the cat sat down", "the cat sat down")])
    assert main(["combine", str(a), str(b), str(c), "-o", str(tmp_path / "rover")]) == 0
    out = capsys.readouterr().out
    assert "a: WER 25.00%" in out and "combined: WER 0.00% (0/4" in out
    data = json.loads((tmp_path / "rover" / "results.json").read_text())
    assert data["utterances"][0]["hypothesis"] == "the cat sat down"
    assert main(["compare", str(a), str(tmp_path / "rover")]) == 0
    assert main(["combine", str(a), str(b), "-o", str(tmp_path / "rover")]) == 2  # not empty, no --force
    assert "not empty" in capsys.readouterr().err
    assert main(["combine", str(a), str(tmp_path / "missing"), "-o", str(tmp_path / "r2")]) == 2
    assert "missing: no results.json" in capsys.readouterr().err


def _result(*words):
    """A Result from (word, start, end) triples."""
    ws = [Word(w, s, e, 0.9) for w, s, e in words]
    text = " ".join(w for w, _, _ in words)
    return Result(text, 10.0, [Segment(ws[0].start, ws[-1].end, text)] if ws else [], ws, 0.9)


def test_combined_transcript_keeps_the_times_of_the_first_system_that_voted_for_each_word():
    a = _result(("the", 0.10, 0.20), ("bat", 0.30, 0.40), ("sat", 0.50, 0.60))
    b = _result(("the", 0.12, 0.22), ("cat", 0.32, 0.42), ("sat", 0.52, 0.62))
    c = _result(("a", 0.14, 0.24), ("cat", 0.34, 0.44), ("sat", 0.54, 0.64))
    out = combine_results([a, b, c])
    assert out.text == "the cat sat"
    assert [(w.word, w.start, w.end) for w in out.words] == [("the", 0.10, 0.20), ("cat", 0.32, 0.42),
                                                             ("sat", 0.50, 0.60)]
    assert [(s.start, s.end, s.text) for s in out.segments] == [(0.10, 0.60, "the cat sat")]
    assert out.duration == 10.0 and out.confidence == pytest.approx(0.9)


def test_winners_from_different_systems_are_put_in_time_order_so_cues_never_end_before_they_start():
    # the slots are aligned by text: "i" keeps a's times (4.90 s), "if" b's, which begin earlier
    a = _result(("i", 4.90, 4.94), ("of", 4.95, 5.00), ("go", 5.30, 5.50))
    b = _result(("i", 4.80, 4.84), ("if", 4.85, 4.88), ("go", 5.32, 5.52))
    c = _result(("i", 4.81, 4.85), ("if", 4.86, 4.90), ("go", 5.31, 5.51))
    out = combine_results([a, b, c])
    assert out.text == "i if go"
    starts_ends = [(w.start, w.end) for w in out.words]
    assert all(s <= e for s, e in starts_ends)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(starts_ends, starts_ends[1:]))
    assert all(seg.start <= seg.end for seg in out.segments)


def test_words_far_apart_in_time_never_share_a_slot():
    # as plain text, "go" has two votes of three; in time, each "go" stands alone in its stretch
    a, b, c = _result(("go", 0.0, 0.2)), _result(("go", 3.0, 3.2)), _result()
    assert combine([a.text, b.text, c.text]) == "go"
    assert combine_results([a, b, c]).text == ""


def test_long_transcripts_are_cut_at_shared_silences_and_re_segmented_at_pauses():
    phrase = lambda t0: [("one", t0, t0 + 0.2), ("two", t0 + 0.3, t0 + 0.5)]  # noqa: E731
    a = _result(*phrase(0.0), *phrase(2.0), ("three", 2.6, 2.8))
    b = _result(*phrase(0.0), *phrase(2.0))
    out = combine_results([a, b, b])
    assert out.text == "one two one two"
    assert [s.text for s in out.segments] == ["one two", "one two"]


def test_transcripts_without_word_times_are_combined_as_text():
    untimed = Result("red car", 2.0)
    out = combine_results([untimed, Result("blue car", 2.0), Result("blue car", 2.0)])
    assert out.text == "blue car" and out.words == []
    assert [(s.start, s.end) for s in out.segments] == [(0.0, 2.0)]


def test_a_combined_evaluation_counts_each_file_scored_cut_short_once():
    from asr.evaluate import Evaluation
    from asr.metrics import char_errors, word_errors
    from asr.rover import combine_evaluations

    def evaluation(hyp, truncated):
        rows = [UtteranceResult("a", "a.wav", "a cat", hyp, "spk")]
        return Evaluation(rows, word_errors(["a cat"], [hyp]), char_errors(["a cat"], [hyp]), 1.0, 0.1,
                          truncated=truncated)

    cut = ["a.wav: truncated: 0.5 s of audio where its header declares 1 s"]
    combined = combine_evaluations([evaluation("a cat", cut), evaluation("a hat", cut)])
    assert combined.truncated == cut and combined.summary()["truncated"] == 1


def test_a_combined_evaluation_counts_the_audio_every_system_decoded_and_the_sum_of_the_systems_rtfs():
    # the second system skipped "b" (its search killed its worker): the vote is over "a" alone
    from asr.evaluate import Evaluation
    from asr.metrics import char_errors, word_errors
    from asr.rover import combine_evaluations

    def evaluation(seconds_by_id, decode_seconds):
        rows = [UtteranceResult(i, f"{i}.wav", "a cat", "a cat", "spk", s) for i, s in seconds_by_id.items()]
        refs = [r.reference for r in rows]
        return Evaluation(rows, word_errors(refs, refs), char_errors(refs, refs), sum(seconds_by_id.values()),
                          decode_seconds)

    first, second = evaluation({"a": 2.0, "b": 6.0}, 0.8), evaluation({"a": 2.0}, 0.4)
    combined = combine_evaluations([first, second])
    assert [u.id for u in combined.utterances] == ["a"]
    assert combined.audio_seconds == pytest.approx(2.0)
    assert combined.summary()["rtf"] == pytest.approx(0.8 / 8.0 + 0.4 / 2.0)


def test_a_combined_evaluation_leaves_out_of_its_rtf_the_searches_a_killed_worker_broke_off_in_any_system():
    from asr.evaluate import Evaluation
    from asr.metrics import char_errors, word_errors
    from asr.rover import combine_evaluations

    def evaluation(seconds_by_id, decode_seconds, retry_seconds=0.0, retried=0):
        rows = [UtteranceResult(i, f"{i}.wav", "a cat", "a cat", "spk", s) for i, s in seconds_by_id.items()]
        refs = [r.reference for r in rows]
        return Evaluation(rows, word_errors(refs, refs), char_errors(refs, refs), sum(seconds_by_id.values()),
                          decode_seconds, retry_seconds=retry_seconds, retried_batches=retried)

    first, second = evaluation({"a": 2.0, "b": 6.0}, 0.8, 0.4, 1), evaluation({"a": 2.0}, 0.4)
    summary = combine_evaluations([first, second]).summary()
    assert summary["rtf"] == pytest.approx((0.8 - 0.4) / 8.0 + 0.4 / 2.0)
    assert summary["retried_batches"] == 1 and summary["retry_seconds"] == pytest.approx(0.4 * 2.0 / 8.0)


def test_a_combined_transcript_of_nothing_keeps_the_confidence_of_the_first_system_that_heard_nothing():
    # as merge_results does: None is kept for audio no model was run on (silence)
    nothing = [Result("", 2.0, confidence=0.95), Result("", 2.0, confidence=0.9)]
    assert combine_results(nothing).confidence == 0.95
    voted_out = [_result(("go", 0.0, 0.2)), Result("", 10.0, confidence=0.8), Result("", 10.0, confidence=0.7)]
    out = combine_results(voted_out)
    assert out.text == "" and out.confidence == 0.8
    untimed = [Result("go", 10.0), Result("", 10.0, confidence=0.8), Result("", 10.0, confidence=0.7)]
    assert combine_results(untimed).confidence == 0.8
    assert combine_results([Result("", 2.0), Result("", 2.0)]).confidence is None


def test_an_id_the_manifest_repeats_is_combined_row_by_row_not_with_its_last_row_s_hypotheses():
    from asr.evaluate import Evaluation
    from asr.metrics import char_errors, word_errors
    from asr.rover import combine_evaluations

    refs = ["a cat", "a dog"]

    def evaluation(hyps):
        rows = [UtteranceResult("same", f"{i}.wav", r, h, "spk") for i, (r, h) in enumerate(zip(refs, hyps))]
        return Evaluation(rows, word_errors(refs, hyps), char_errors(refs, hyps), 2.0, 0.1)

    combined = combine_evaluations([evaluation(["a cat", "a dog"])] * 2 + [evaluation(["a hat", "a log"])])
    assert [u.hypothesis for u in combined.utterances] == ["a cat", "a dog"] and combined.wer == 0


def test_words_that_differ_only_in_case_vote_together_and_win_as_the_first_system_that_voted_spelled_them():
    # an upper-case LM's system writes "THE CAT"; normalized, as scored, its "CAT" is the fourth one's "cat"
    assert combine(["THE CAT", "the bat", "the bat", "the cat"]) == "THE CAT"
    assert combine(["the bat", "The Cat", "the cat", "the bat"]) == "the bat"  # a tie of two: the first system's
    assert combine(["RED CAR", "red car", "blue car"]) == "RED CAR"
    # shifted by a word, case-blind matches still line the hypotheses up on the words they share
    assert word_network(["P Q", "q", "q r"]) == [("P", None, None), ("Q", "q", "q"), (None, None, "r")]


def test_a_combined_transcript_votes_words_case_blind_and_keeps_the_first_voters_spelling_and_times():
    a = _result(("THE", 0.10, 0.20), ("CAT", 0.30, 0.40))
    b = _result(("the", 0.12, 0.22), ("bat", 0.32, 0.42))
    c = _result(("the", 0.14, 0.24), ("cat", 0.34, 0.44))
    out = combine_results([a, b, c])
    assert [(w.word, w.start, w.end) for w in out.words] == [("THE", 0.10, 0.20), ("CAT", 0.30, 0.40)]
