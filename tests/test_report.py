"""Error reports (sclite-style) and comparisons between two of them."""

import json
import re

import pytest

from asr.cli import main
from asr.compare import compare_reports, render_comparison
from asr.evaluate import UtteranceResult
from asr.metrics import cer, wer
from asr.report import ReportError, build_report, check_report_dir, render_html, render_markdown, write_report
from asr.report_text import sclite_lines
from conftest import write_sine

# Hand-counted: u1 has 1 substitution (cat->bat), 1 deletion (on), 1 insertion (down) in 6 words;
# u2 is right; u3 has an empty reference and 2 inserted words; u4 lost both of its 2 words.
PAIRS = [("u1", "s1", "the cat sat on the mat", "the bat sat the mat down"),
         ("u2", "s2", "hello world", "hello world"),
         ("u3", "s2", "", "extra words"),
         ("u4", "s1", "one two", "")]


def results(pairs=PAIRS):
    return [UtteranceResult(i, f"{i}.wav", ref, hyp, spk) for i, spk, ref, hyp in pairs]


def test_totals_are_the_hand_counted_substitutions_deletions_insertions_and_sentence_errors():
    report = build_report(results())
    s = report.summary()
    assert (s["substitutions"], s["deletions"], s["insertions"], s["words"]) == (1, 3, 3, 10)
    assert s["word_errors"] == 7 and s["wer"] == pytest.approx(0.7)
    assert (s["sentence_errors"], s["utterances"]) == (3, 4)
    refs, hyps = [p[2] for p in PAIRS], [p[3] for p in PAIRS]
    assert s["cer"] == pytest.approx(cer(refs, hyps))  # the same CER asr evaluate prints


def test_alignment_upper_cases_errors_and_fills_gaps_with_stars_as_sclite_does():
    u1 = build_report(results()[:1]).utterances[0]
    assert sclite_lines(u1.alignment) == ("REF:  the CAT sat ON  the mat ****",
                                          "HYP:  the BAT sat *** the mat DOWN")


def test_report_directory_holds_markdown_html_and_json_with_the_exact_counts(tmp_path):
    write_report(build_report(results(), {"model": "m"}), tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    for row in ("| substitutions | 1 | 10.00% |", "| deletions | 3 | 30.00% |", "| insertions | 3 | 30.00% |",
                "| **word errors (WER)** | 7 | **70.00%** |", "| sentences with errors (SER) | 3 / 4 | 75.00% |",
                "| s1 | 2 | 8 | 1 | 3 | 1 | 62.50% |", "| s2 | 2 | 2 | 0 | 0 | 2 | 100.00% |",
                "| 1 | cat | bat |", "| 1 | on |", "| 1 | down |", "REF:  the CAT sat ON  the mat ****"):
        assert row in md
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert [(u["id"], u["speaker"], u["reference"], u["hypothesis"]) for u in data["utterances"]] == PAIRS
    assert data["summary"]["word_errors"] == 7 and data["summary"]["sentence_errors"] == 3
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "class='c sub'" in html and "class='c del'" in html and "class='c ins'" in html
    assert "70.00%" in html


def test_writing_a_report_builds_its_speaker_table_once_for_all_three_files(tmp_path, monkeypatch):
    from asr.report import Report

    built, table = [], Report.speaker_table
    monkeypatch.setattr(Report, "speaker_table", lambda self: built.append(1) or table(self))
    report = build_report(results())
    write_report(report, tmp_path / "rep")
    assert len(built) == 1
    assert (tmp_path / "rep" / "report.md").read_text() == render_markdown(report)  # the same files as before
    assert (tmp_path / "rep" / "report.html").read_text() == render_html(report)


def test_speakers_are_listed_worst_first_and_confusions_most_frequent_first():
    pairs = [("a", "good", "a b c d", "a b c d"), ("b", "bad", "cat cat dog", "bat bat dog"),
             ("c", "bad", "cat dog", "rat dog")]
    report = build_report(results(pairs))
    assert [name for name, _ in report.speakers()] == ["bad", "good"]
    subs, _, _ = report.confusions()
    assert subs.most_common(2) == [(("cat", "bat"), 2), (("cat", "rat"), 1)]


def test_html_escapes_words():
    text = render_html(build_report(results([("x", "s", "a", "<script>")])))
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_an_existing_report_directory_is_not_overwritten_without_force(tmp_path):
    report = build_report(results())
    write_report(report, tmp_path / "rep")
    with pytest.raises(ReportError, match="--force"):
        write_report(report, tmp_path / "rep")
    write_report(build_report(results()[:1]), tmp_path / "rep", force=True)
    assert len(json.loads((tmp_path / "rep" / "results.json").read_text())["utterances"]) == 1


def test_evaluate_refuses_an_existing_report_directory_before_evaluating(tmp_path, capsys):
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "report.md").write_text("old")
    assert main(["evaluate", str(tmp_path / "absent.jsonl"), "--report", str(tmp_path / "rep")]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "rep" / "report.md").read_text() == "old"


def test_evaluate_writes_a_report_of_every_utterance(tiny_model_dir, tmp_path, capsys):
    rows = []
    for i, text in enumerate(["Hello world", "hello"]):
        wav = write_sine(tmp_path / f"{i}.wav", seconds=0.6, freq=300 + 200 * i)
        rows.append(json.dumps({"audio_filepath": str(wav), "duration": 0.6, "text": text,
                                "speaker": "s", "id": f"utt{i}"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    assert main(["evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model_dir), "--device", "cpu",
                 "--json", "--report", str(tmp_path / "rep")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert [u["id"] for u in data["utterances"]] == ["utt0", "utt1"]
    assert data["utterances"][0]["reference"] == "hello world"  # normalized, as scored
    assert data["summary"]["wer"] == pytest.approx(printed["wer"])
    assert (tmp_path / "rep" / "report.html").stat().st_size > 0


def test_compare_lists_the_utterances_that_got_better_and_worse(tmp_path, capsys):
    a = [("u1", "s", "one two three", "one two three"), ("u2", "s", "four five", "for five"),
         ("u3", "s", "six", "six"), ("only_a", "s", "x", "x")]
    b = [("u1", "s", "one two three", "one too tree"), ("u2", "s", "four five", "four five"),
         ("u3", "s", "six", "six")]
    write_report(build_report(results(a)), tmp_path / "a")
    write_report(build_report(results(b)), tmp_path / "b")
    comparison = compare_reports(tmp_path / "a", tmp_path / "b")
    better, worse = comparison.changes()
    assert [ua.id for ua, _ in better] == ["u2"] and [ua.id for ua, _ in worse] == ["u1"]
    assert comparison.only_a == ["only_a"]
    text = render_comparison(comparison)
    assert "better in B: 1, worse in B: 1, unchanged: 1" in text
    assert "WER B - A: +16.67 points" in text  # 1 -> 2 errors in the 6 shared words
    # neither one speaker nor three utterances can be resampled into an interval, and the line says so
    assert "not tested for significance, as 1 speaker and 3 utterances are too few to resample" in text
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "u1 (s): 0 -> 2 word errors" in out and "u2 (s): 1 -> 0 word errors" in out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b" / "results.json")]) == 0  # its file, named
    assert capsys.readouterr().out == out


def test_compare_resamples_utterances_when_there_are_too_few_speakers_and_says_so(tmp_path):
    rows = [(f"u{i}", "s1" if i % 2 else "s2", "one two three", "one two three") for i in range(12)]
    worse = [(u, spk, ref, "one too three" if i % 3 == 0 else hyp) for i, (u, spk, ref, hyp) in enumerate(rows)]
    write_report(build_report(results(rows)), tmp_path / "a")
    write_report(build_report(results(worse)), tmp_path / "b")
    text = render_comparison(compare_reports(tmp_path / "a", tmp_path / "b"))
    assert "paired bootstrap over 12 utterances" in text and "utterances, as 2 speakers are too few" in text


@pytest.mark.parametrize("n", [1, 2, 9])
def test_compare_gives_no_interval_over_fewer_utterances_than_a_bootstrap_can_resample(tmp_path, n):
    # one utterance resamples to itself every time: an "interval" [+33.33, +33.33], certain of nothing
    rows = [(f"u{i}", None, "one two three", "one two three") for i in range(n)]
    worse = [(u, spk, ref, "one too three") for u, spk, ref, _ in rows]
    write_report(build_report(results(rows)), tmp_path / "a")
    write_report(build_report(results(worse)), tmp_path / "b")
    text = render_comparison(compare_reports(tmp_path / "a", tmp_path / "b"))
    utterances = "1 utterance is" if n == 1 else f"{n} utterances are"
    assert f"WER B - A: +33.33 points; not tested for significance, as {utterances} too few to resample" in text
    assert "interval" not in text


def test_compare_names_a_directory_that_is_not_a_report(tmp_path, capsys):
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "results.json" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["[" * 100000, '{"wer": 1' + "0" * 5000 + "}"])
def test_compare_names_a_results_file_too_deep_or_too_long_a_number_to_read(tmp_path, capsys, content):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(content)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 2
    assert f"{tmp_path / 'a'}" in capsys.readouterr().err


def test_compare_refuses_reports_with_no_utterance_in_common_or_with_repeated_ids(tmp_path, capsys):
    write_report(build_report(results([("u1", "s", "one two", "one two")])), tmp_path / "a")
    write_report(build_report(results([("v1", "s", "one two", "one two")])), tmp_path / "b")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "no utterance ids in common" in capsys.readouterr().err
    write_report(build_report(results([("u1", "s", "one", "one"), ("u1", "s", "two", "too")])), tmp_path / "twice")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "twice")]) == 2
    assert "twice: 1 utterance id(s) occur more than once (e.g. 'u1': 2 times)" in capsys.readouterr().err


def test_skipped_files_are_listed_with_their_reason():
    report = build_report(results(), {"skipped": [["bad.wav", "file not found"]]})
    assert "- bad.wav: file not found" in render_markdown(report)
    assert "bad.wav: file not found" in render_html(report)


def test_report_files_are_written_whole_each_renamed_into_place(tmp_path, monkeypatch):
    import os

    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renamed.append(os.path.basename(dst)) or replace(src, dst))
    write_report(build_report(results()), tmp_path / "rep")
    assert sorted(renamed) == ["report.html", "report.md", "results.json"]
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["report.html", "report.md", "results.json"]


def test_a_report_directory_that_cannot_be_written_is_refused_up_front_naming_it(tmp_path):
    (tmp_path / "a_file").write_text("x")  # a file where a folder should be
    with pytest.raises(OSError, match="cannot write here") as error:
        check_report_dir(tmp_path / "a_file" / "rep")
    assert error.value.filename == str(tmp_path / "a_file" / "rep" / "results.json")


def test_compare_resamples_speakers_when_there_are_enough_of_them(tmp_path):
    rows = [(f"u{i}", f"s{i % 12}", "one two three", "one two three") for i in range(24)]
    worse = [(u, spk, ref, "one too three" if i % 3 == 0 else hyp) for i, (u, spk, ref, hyp) in enumerate(rows)]
    write_report(build_report(results(rows)), tmp_path / "a")
    write_report(build_report(results(worse)), tmp_path / "b")
    text = render_comparison(compare_reports(tmp_path / "a", tmp_path / "b"))
    assert "paired bootstrap over 12 speakers" in text and "too few" not in text


# --- words that look like markup, or are wider or narrower than their length ------------------

def rendered_markdown(md: str) -> str:
    """report.md as a Markdown renderer shows it (Python-Markdown, tensorboard's dependency)."""
    markdown = pytest.importorskip("markdown")
    return markdown.markdown(md, extensions=["tables", "fenced_code"])


MARKUP = [("u1", "<i>s\\|1</i>", "the <b>cat</b> sat", "the |cat| *sat* _x_ `y` [z](w) a&amp;b")]


def test_markdown_tables_escape_pipes_so_every_row_keeps_its_columns():
    md = render_markdown(build_report(results(MARKUP)))
    assert "s\\\\\\|1" in md  # the backslash escaped, then the pipe
    html = rendered_markdown(md)
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        cells = [len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)]
        assert len(set(cells)) == 1, table  # a stray | would add a column to its row


def test_markdown_shows_words_that_look_like_html_or_markup_as_the_words_themselves():
    md = render_markdown(build_report(results(MARKUP), {"model": "<script>alert(1)</script>\n## heading"}))
    html = rendered_markdown(md)
    for tag in ("<b>", "<i>", "<script>", "<em>", "<code>y</code>", "<a href", "<h2>heading"):
        assert tag not in html
    assert "&lt;b&gt;cat&lt;/b&gt;" in html and "&lt;i&gt;s\\|1&lt;/i&gt;" in html
    assert "*sat*" in html and "_x_" in html and "`y`" in html and "a&amp;amp;b" in html


def test_markdown_keeps_the_aligned_utterances_verbatim_in_a_code_block_and_html_escapes_as_before():
    report = build_report(results(MARKUP))
    md = render_markdown(report)
    for line in sclite_lines(report.utterances[0].alignment):
        assert line in md  # in a code block nothing is markup: escaping would show the backslashes
    assert "<B>CAT</B>" in md
    assert "&lt;b&gt;cat&lt;/b&gt;" in render_html(report) and "*sat*" in render_html(report)


def test_html_lays_out_each_utterances_aligned_words_in_its_own_writing_direction():
    # a left-to-right row of Arabic words would read last word first
    html = render_html(build_report(results([("u1", "s", "كتاب جميل",
                                              "كتب جميل"),
                                             ("u2", "s", "the cat", "the cat")])))
    rows = re.findall(r"<div class=al[^>]*>", html)
    assert len(rows) == 2 and all("dir=auto" in row for row in rows)


def test_an_utterance_id_cannot_close_the_code_block_of_aligned_utterances():
    md = render_markdown(build_report(results([("u1\n```\n<b>x</b>", "s", "a", "a")])))
    assert "<b>" not in rendered_markdown(md)


@pytest.mark.parametrize("ref, hyp, lines", [
    ("der fuß ist", "der fus ist", ("REF:  der FUSS ist", "HYP:  der FUS  ist")),  # ß upper-cases to SS
    ("the 猫 sat", "the cat sat", ("REF:  the 猫  sat", "HYP:  the CAT sat")),  # a wide character is 2 columns
    ("cafe\u0301 noir", "cafe noir", ("REF:  CAFE\u0301 noir", "HYP:  CAFE noir")),  # the accent combines: 0
    ("我 爱 你", "我 你", ("REF:  我 爱  你", "HYP:  我 *** 你")),
])
def test_aligned_columns_line_up_as_displayed_whatever_upper_casing_or_character_widths_do(ref, hyp, lines):
    assert sclite_lines(build_report(results([("u", "s", ref, hyp)])).utterances[0].alignment) == lines


# --- a speaker with no reference words ---------------------------------------------------------

SILENT = [("u1", "talker", "one two three four", "one too three four"),
          ("u2", "silent", "", "uh huh"), ("u3", "silent", "", "")]


def test_a_speaker_with_no_reference_words_has_no_wer_but_keeps_its_insertions(tmp_path):
    report = build_report(results(SILENT))
    md = render_markdown(report)
    assert "| silent | 2 | 0 | 0 | 0 | 2 | — | — | 50.00% |" in md
    assert "| talker | 1 | 4 | 1 | 0 | 0 | 25.00% |" in md
    html = render_html(report)
    assert "<td>silent</td><td>2</td><td>0</td><td>0</td><td>0</td><td>2</td><td>—</td><td>—</td>" in html
    write_report(report, tmp_path / "rep")
    speakers = {s["speaker"]: s for s in json.loads((tmp_path / "rep" / "results.json").read_text())["speakers"]}
    assert speakers["silent"]["wer"] is None and speakers["silent"]["cer"] is None
    assert speakers["silent"]["insertions"] == 2 and speakers["silent"]["ser"] == pytest.approx(0.5)
    assert speakers["talker"]["wer"] == pytest.approx(0.25)


def test_speakers_without_reference_words_sort_after_those_with_a_wer_and_the_total_is_unchanged():
    report = build_report(results(SILENT + [("u4", "perfect", "a b", "a b")]))
    assert [name for name, _ in report.speakers()] == ["talker", "perfect", "silent"]
    refs, hyps = [p[2] for p in SILENT], [p[3] for p in SILENT]
    assert report.summary()["wer"] == pytest.approx(wer(refs + ["a b"], hyps + ["a b"]))  # 3 errors / 6 words
    assert report.summary()["wer"] == pytest.approx(0.5)


# --- references that normalized to nothing, and results files asr did not write ---------------

NOTHING = [("e1", "s", "", "uh huh"), ("e2", "s", "", "")]  # "!!!" and "--" as references, normalized


def test_totals_over_references_that_normalized_to_nothing_are_no_rate_not_a_percentage_of_zero_words():
    report = build_report(results(NOTHING))
    md = render_markdown(report)
    for row in ("| insertions | 2 | — |", "| **word errors (WER)** | 2 | **—** |",
                "| character errors (CER) | 6 / 0 | — |", "| sentences with errors (SER) | 1 / 2 | 50.00% |"):
        assert row in md
    assert "%" not in md.split("## Totals")[1].split("| sentences")[0]  # was: insertions 200.00%, WER 100.00%
    assert "<td><b>word error rate</b></td><td>2</td><td><b>—</b></td>" in render_html(report)
    assert report.summary()["wer"] == 1.0  # results.json keeps the number asr evaluate prints


def test_compare_of_utterances_without_reference_words_shows_no_rates_and_tests_no_difference(tmp_path):
    write_report(build_report(results(NOTHING)), tmp_path / "a")
    write_report(build_report(results([(i, s, ref, "") for i, s, ref, _ in NOTHING])), tmp_path / "b")
    text = render_comparison(compare_reports(tmp_path / "a", tmp_path / "b"))
    assert re.search(r"^WER +— +— +—$", text, re.M) and re.search(r"^SER +50.00% +0.00% +-50.00%$", text, re.M)
    assert "WER B - A: not tested for significance, as the utterances in both have no reference words" in text
    assert "points" not in text  # was: "-200.00 points", beside a table saying -100.00%


def write_results(directory, data: bytes):
    directory.mkdir()
    (directory / "results.json").write_bytes(data)
    return directory


def test_a_results_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path, capsys):
    write_report(build_report(results()), tmp_path / "a")
    latin = write_results(tmp_path / "latin", json.dumps(
        {"utterances": [{"id": "u1", "reference": "café", "hypothesis": "cafe"}]}, ensure_ascii=False).encode("latin-1"))
    assert main(["compare", str(tmp_path / "a"), str(latin)]) == 2
    assert f"{latin / 'results.json'}: not UTF-8 text (byte 0xe9 at offset 46)" in capsys.readouterr().err


@pytest.mark.parametrize("data, problem", [
    ({"utterances": [{"id": "u1", "reference": None, "hypothesis": "x"}]},
     "utterance 'u1': its reference and hypothesis must be text, not NoneType and str"),
    ({"utterances": [{"id": "u1", "reference": "x", "hypothesis": "x"}], "meta": ["model"]},
     "its meta is a list, not an object"),
])
def test_a_results_file_with_fields_of_the_wrong_type_is_refused_naming_the_file_and_the_problem(
        tmp_path, capsys, data, problem):
    write_report(build_report(results()), tmp_path / "a")
    odd = write_results(tmp_path / "odd", json.dumps(data).encode())
    assert main(["compare", str(tmp_path / "a"), str(odd)]) == 2
    err = capsys.readouterr().err
    assert f"{odd / 'results.json'}: not a results file" in err and problem in err


def test_speakers_stored_as_numbers_are_read_as_names_and_sort_beside_utterances_without_one(tmp_path):
    from asr.report import load_report

    rows = [{"id": "u1", "speaker": 7, "reference": "a b", "hypothesis": "a c"},
            {"id": "u2", "speaker": None, "reference": "a b", "hypothesis": "a c"}]  # the same WER: sorted by name
    rep = write_results(tmp_path / "rep", json.dumps({"utterances": rows}).encode())
    assert [name for name, _ in load_report(rep).speakers()] == ["-", "7"]
