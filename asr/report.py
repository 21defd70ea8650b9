"""Error reports in the spirit of NIST sclite (``asr.compare`` compares two of them).

A report directory holds::

    report.md      totals, speakers, most frequent confusions, every utterance aligned
    report.html    the same, with the errors coloured
    results.json   per-utterance id, speaker, reference and hypothesis (what ``compare`` reads)

Alignments come from jiwer (the same edit distance as ``asr.metrics``), so the report's
totals are the WER and CER that ``asr evaluate`` prints. Errors are marked as sclite marks
them: wrong words upper-cased, gaps filled with ``*``.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import jiwer

from asr.atomic import check_writable, write_text_atomic
from asr.metrics import ErrorCounts
from asr.report_text import UNDEFINED, fenced, md, pct, sclite_lines, shown_rates


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    """One column of a word alignment: op is "ok", "sub", "del" or "ins"."""
    op: str
    ref: str | None
    hyp: str | None


@dataclass
class ScoredUtterance:
    id: str
    speaker: str | None
    reference: str
    hypothesis: str
    alignment: list[Column]
    chars: ErrorCounts
    audio_filepath: str = ""

    @property
    def words(self) -> ErrorCounts:
        ops = Counter(c.op for c in self.alignment)
        return ErrorCounts(ops["sub"], ops["del"], ops["ins"], ops["ok"] + ops["sub"] + ops["del"])


def _sum(counts: Iterable[ErrorCounts]) -> ErrorCounts:
    s = d = i = n = 0
    for c in counts:
        s, d, i, n = s + c.substitutions, d + c.deletions, i + c.insertions, n + c.reference_length
    return ErrorCounts(s, d, i, n)


@dataclass
class Report:
    utterances: list[ScoredUtterance]
    meta: dict = field(default_factory=dict)  # model, manifest, date, skipped files ...

    @property
    def words(self) -> ErrorCounts:
        return _sum(u.words for u in self.utterances)

    def by_id(self, name) -> dict[str, ScoredUtterance]:
        """The utterances by id, for matching them across reports; ``name`` (its directory) in the error."""
        ids = Counter(u.id for u in self.utterances)
        repeated = [i for i, n in ids.items() if n > 1]
        if repeated:
            raise ReportError(f"{name}: {len(repeated)} utterance id(s) occur more than once (e.g. {repeated[0]!r}: "
                              f"{ids[repeated[0]]} times), so its utterances cannot be matched by id; give the "
                              "manifest unique ids")
        return {u.id: u for u in self.utterances}

    @property
    def chars(self) -> ErrorCounts:
        return _sum(u.chars for u in self.utterances)

    @property
    def sentence_errors(self) -> int:
        return sum(u.words.errors > 0 for u in self.utterances)

    @property
    def ser(self) -> float:
        return self.sentence_errors / len(self.utterances) if self.utterances else 0.0

    def summary(self) -> dict:
        w, c = self.words, self.chars
        return {"utterances": len(self.utterances), "words": w.reference_length,
                "correct": w.reference_length - w.substitutions - w.deletions,
                "substitutions": w.substitutions, "deletions": w.deletions, "insertions": w.insertions,
                "word_errors": w.errors, "wer": w.rate, "chars": c.reference_length,
                "char_errors": c.errors, "cer": c.rate, "sentence_errors": self.sentence_errors,
                "ser": self.ser}

    def speakers(self) -> list[tuple[str, "Report"]]:
        """(speaker, that speaker's utterances as a Report), worst WER first; then the speakers
        with no reference words, whose WER is undefined (not 100%, however much they inserted)."""
        groups: dict[str, list[ScoredUtterance]] = {}
        for u in self.utterances:
            groups.setdefault(u.speaker or "-", []).append(u)
        rows = [(s, Report(us)) for s, us in groups.items()]

        def order(row):
            rate = row[1].words.rate_or_none
            return (rate is None, -(rate or 0.0), row[0])
        return sorted(rows, key=order)

    def speaker_table(self) -> list[dict]:
        """One row per speaker, in ``speakers()`` order; ``wer``/``cer`` None where undefined."""
        return [{"speaker": name, "utterances": len(r.utterances), "words": r.words.reference_length,
                 "substitutions": r.words.substitutions, "deletions": r.words.deletions,
                 "insertions": r.words.insertions, "wer": r.words.rate_or_none, "cer": r.chars.rate_or_none,
                 "ser": r.ser} for name, r in self.speakers()]

    def confusions(self) -> tuple[Counter, Counter, Counter]:
        """Counters of (ref, hyp) substitutions, deleted words and inserted words."""
        subs, dels, ins = Counter(), Counter(), Counter()
        for u in self.utterances:
            for c in u.alignment:
                if c.op == "sub":
                    subs[(c.ref, c.hyp)] += 1
                elif c.op == "del":
                    dels[c.ref] += 1
                elif c.op == "ins":
                    ins[c.hyp] += 1
        return subs, dels, ins


def _columns(chunks, ref: list[str], hyp: list[str]) -> list[Column]:
    cols = []
    for ch in chunks:
        r, h = ref[ch.ref_start_idx:ch.ref_end_idx], hyp[ch.hyp_start_idx:ch.hyp_end_idx]
        if ch.type == "equal":
            cols += [Column("ok", a, b) for a, b in zip(r, h)]
        elif ch.type == "substitute":  # jiwer's substitution chunks pair words one to one
            cols += [Column("sub", a, b) for a, b in zip(r, h)]
        elif ch.type == "delete":
            cols += [Column("del", a, None) for a in r]
        else:
            cols += [Column("ins", None, b) for b in h]
    return cols


def _chunk_counts(chunks, ref_len: int) -> ErrorCounts:
    n = {"substitute": 0, "delete": 0, "insert": 0, "equal": 0}
    for ch in chunks:
        n[ch.type] += max(ch.ref_end_idx - ch.ref_start_idx, ch.hyp_end_idx - ch.hyp_start_idx)
    return ErrorCounts(n["substitute"], n["delete"], n["insert"], ref_len)


def score(utterances: Iterable) -> list[ScoredUtterance]:
    """Objects with ``id, reference, hypothesis, speaker`` (e.g. evaluate's UtteranceResult)
    -> word alignments and character error counts, one per utterance.

    An empty reference is allowed (jiwer refuses it): every hypothesis word is an insertion.
    """
    utterances = list(utterances)
    scorable = [i for i, u in enumerate(utterances) if u.reference.strip()]
    refs = [utterances[i].reference for i in scorable]
    hyps = [utterances[i].hypothesis for i in scorable]
    words = jiwer.process_words(refs, hyps) if refs else None
    chars = jiwer.process_characters(refs, hyps) if refs else None
    aligned = {}
    for k, i in enumerate(scorable):
        aligned[i] = (_columns(words.alignments[k], words.references[k], words.hypotheses[k]),
                      _chunk_counts(chars.alignments[k], len(chars.references[k])))
    out = []
    for i, u in enumerate(utterances):
        cols, char_counts = aligned.get(i) or (
            [Column("ins", None, w) for w in u.hypothesis.split()],
            ErrorCounts(0, 0, len(u.hypothesis.strip()), 0))
        out.append(ScoredUtterance(str(u.id), u.speaker, u.reference, u.hypothesis, cols, char_counts,
                                   getattr(u, "audio_filepath", "") or ""))
    return out


def build_report(utterances: Iterable, meta: dict | None = None) -> Report:
    return Report(score(utterances), dict(meta or {}))


# --- Markdown and HTML (their text: asr.report_text) -----------------------------------------

def _counts_line(u: ScoredUtterance) -> str:
    w = u.words
    ok = w.reference_length - w.substitutions - w.deletions
    return f"id: {u.id} ({u.speaker or '-'})  #C #S #D #I: {ok} {w.substitutions} {w.deletions} {w.insertions}"


def confusion_tables(report: Report, top: int = 20) -> list[tuple[str, tuple, list[tuple]]]:
    """(title, header, rows) of the most frequent substitutions, deletions and insertions."""
    subs, dels, ins = report.confusions()
    return [("Substitutions (reference -> hypothesis)", ("count", "reference", "hypothesis"),
             [(n, r, h) for (r, h), n in subs.most_common(top)]),
            ("Deletions (reference words dropped)", ("count", "word"), [(n, w) for w, n in dels.most_common(top)]),
            ("Insertions (hypothesis words added)", ("count", "word"), [(n, w) for w, n in ins.most_common(top)])]


NO_WORDS_NOTE = (f"{UNDEFINED}: no reference words, so no error rate (their inserted words are counted in ins, "
                 "and in the totals)")


def render_markdown(report: Report, top: int = 20, speakers: list[dict] | None = None) -> str:
    """``speakers``: ``report.speaker_table()``, when the caller has it already (``write_report``)."""
    s = report.summary()
    r = shown_rates(s)
    lines = ["# Error report", ""]
    lines += [f"- {md(k, cell=False)}: {md(v, cell=False)}" for k, v in report.meta.items() if k != "skipped"]
    skipped = report.meta.get("skipped") or []
    if skipped:
        lines.append(f"- skipped (unreadable audio, not scored): {len(skipped)}")
    lines += ["", "## Totals", "", "| | count | rate |", "|---|---:|---:|",
              f"| reference words | {s['words']} | |",
              f"| correct | {s['correct']} | {pct(r['correct'])} |",
              f"| substitutions | {s['substitutions']} | {pct(r['substitutions'])} |",
              f"| deletions | {s['deletions']} | {pct(r['deletions'])} |",
              f"| insertions | {s['insertions']} | {pct(r['insertions'])} |",
              f"| **word errors (WER)** | {s['word_errors']} | **{pct(r['wer'])}** |",
              f"| character errors (CER) | {s['char_errors']} / {s['chars']} | {pct(r['cer'])} |",
              f"| sentences with errors (SER) | {s['sentence_errors']} / {s['utterances']} | {pct(r['ser'])} |",
              "", "## Speakers (worst WER first)", "",
              "| speaker | utterances | words | sub | del | ins | WER | CER | SER |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    speakers = report.speaker_table() if speakers is None else speakers
    for r in speakers:
        lines.append(f"| {md(r['speaker'])} | {r['utterances']} | {r['words']} | {r['substitutions']} | "
                     f"{r['deletions']} | {r['insertions']} | {pct(r['wer'])} | {pct(r['cer'])} | {pct(r['ser'])} |")
    if any(r["wer"] is None for r in speakers):
        lines += ["", NO_WORDS_NOTE]
    lines += ["", "## Most frequent errors"]
    for title, header, rows in confusion_tables(report, top):
        lines += ["", f"### {title}", ""]
        if not rows:
            lines.append("(none)")
            continue
        lines += ["| " + " | ".join(header) + " |", "|---:|" + "---|" * (len(header) - 1)]
        lines += ["| " + " | ".join(md(x) for x in row) + " |" for row in rows]
    lines += ["", "## Utterances", "", "Errors upper-cased, gaps `***` (as sclite).", ""]
    lines += fenced([line for u in report.utterances for line in (_counts_line(u), *sclite_lines(u.alignment), "")])
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {md(p, cell=False)}: {md(why, cell=False)}" for p, why in skipped]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.utt{margin:.6em 0;padding:.3em;border-left:3px solid #ccc}
.utt.err{border-left-color:#d62728}.head{color:#666;font-size:90%}.al{display:flex;flex-wrap:wrap;gap:2px 6px}
.c{display:inline-flex;flex-direction:column;font-family:monospace}.c span{padding:0 2px}
.sub span{background:#ffd98e}.del span{background:#ffb3b3}.ins span{background:#b3d9ff}
.gap{color:#999}.del .r{text-decoration:line-through}#only:checked~#utts .utt:not(.err){display:none}"""


def _e(x) -> str:
    return html.escape(str(x))


def render_html(report: Report, top: int = 20, speakers: list[dict] | None = None) -> str:
    """``speakers``: as ``render_markdown``'s."""
    s = report.summary()
    r = shown_rates(s)
    meta = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in report.meta.items() if k != "skipped")
    skipped = report.meta.get("skipped") or []
    meta += "".join(f"<li>skipped (not scored): {_e(p)}: {_e(why)}</li>" for p, why in skipped)
    rows = [("reference words", s["words"], ""), ("substitutions", s["substitutions"], ""),
            ("deletions", s["deletions"], ""), ("insertions", s["insertions"], ""),
            ("<b>word error rate</b>", s["word_errors"], f"<b>{pct(r['wer'])}</b>"),
            ("character error rate", f"{s['char_errors']} / {s['chars']}", pct(r["cer"])),
            ("sentence error rate", f"{s['sentence_errors']} / {s['utterances']}", pct(r["ser"]))]
    out = [f"<!doctype html><meta charset=utf-8><title>Error report</title><style>{_CSS}</style>",
           f"<h1>Error report</h1><ul>{meta}</ul><h2>Totals</h2><table>",
           *(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows), "</table>",
           "<h2>Speakers (worst WER first)</h2><table><tr><th>speaker</th><th>utterances</th>"
           "<th>words</th><th>sub</th><th>del</th><th>ins</th><th>WER</th><th>CER</th><th>SER</th></tr>"]
    speakers = report.speaker_table() if speakers is None else speakers
    for r in speakers:
        out.append(f"<tr><td>{_e(r['speaker'])}</td><td>{r['utterances']}</td><td>{r['words']}</td>"
                   f"<td>{r['substitutions']}</td><td>{r['deletions']}</td><td>{r['insertions']}</td>"
                   f"<td>{pct(r['wer'])}</td><td>{pct(r['cer'])}</td><td>{pct(r['ser'])}</td></tr>")
    out.append("</table>" + (f"<p>{_e(NO_WORDS_NOTE)}</p>" if any(r["wer"] is None for r in speakers) else "")
               + "<h2>Most frequent errors</h2>")
    for title, header, rows in confusion_tables(report, top):
        out.append(f"<h3>{_e(title)}</h3>")
        if not rows:
            out.append("<p>(none)</p>")
            continue
        out.append("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{_e(x)}</td>" for x in row) + "</tr>" for row in rows]
        out.append("</table>")
    out.append("<h2>Utterances</h2><p>Top line reference, bottom line hypothesis: "
               "<span style='background:#ffd98e'>substituted</span> "
               "<span style='background:#ffb3b3'>deleted</span> "
               "<span style='background:#b3d9ff'>inserted</span></p>"
               "<input type=checkbox id=only><label for=only> only utterances with errors</label><div id=utts>")
    for u in report.utterances:
        cells = "".join(
            f"<span class='c {c.op}' title='{_e(c.op)}'><span class=r>{_e(c.ref) if c.ref else '<i class=gap>***</i>'}"
            f"</span><span>{_e(c.hyp) if c.hyp else '<i class=gap>***</i>'}</span></span>" for c in u.alignment)
        w = u.words
        out.append(f"<div class='utt{' err' if w.errors else ''}'><div class=head>{_e(u.id)} ({_e(u.speaker or '-')})"
                   f" &middot; {w.errors} error(s): {w.substitutions} sub, {w.deletions} del, {w.insertions} ins"
                   f"</div><div class=al dir=auto>{cells}</div></div>")  # RTL words run right to left
    out.append("</div>")
    return "\n".join(out) + "\n"


# --- files -----------------------------------------------------------------------------------

def no_common_utterances(names) -> ReportError:
    return ReportError(f"{' and '.join(map(str, names))}: no utterance ids in common, so nothing to match (an "
                       "utterance's id is its manifest's \"id\", else its audio path): not the same test set")


def check_report_dir(directory: str | Path, force: bool = False) -> Path:
    """Refuse a directory that already holds something, unless ``force``, or that cannot be
    written (an OSError) (checked up front, so that a long evaluation does not end in a refusal)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"{directory}: exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ReportError(f"{directory}: report directory exists and is not empty (use --force to overwrite)")
    check_writable(directory / "results.json")
    return directory


def write_report(report: Report, directory: str | Path, force: bool = False) -> Path:
    directory = check_report_dir(directory, force)
    directory.mkdir(parents=True, exist_ok=True)
    speakers = report.speaker_table()  # a Report per speaker, re-summed: built once for all three files
    results = {"summary": report.summary(), "meta": report.meta,
               "speakers": speakers,  # wer/cer null for a speaker with no reference words
               "utterances": [{"id": u.id, "speaker": u.speaker, "audio_filepath": u.audio_filepath,
                               "reference": u.reference, "hypothesis": u.hypothesis,
                               "word_errors": u.words.errors, "words": u.words.reference_length}
                              for u in report.utterances]}
    # each file whole or not at all: asr compare and combine read results.json
    write_text_atomic(directory / "results.json", json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    write_text_atomic(directory / "report.md", render_markdown(report, speakers=speakers))
    write_text_atomic(directory / "report.html", render_html(report, speakers=speakers))
    return directory


@dataclass
class _Row:
    id: str
    speaker: str | None
    reference: str
    hypothesis: str
    audio_filepath: str = ""


def load_report(directory: str | Path) -> Report:
    """A report directory's results.json (or that file named itself), re-scored (so its numbers
    never go stale)."""
    given = Path(directory)
    path = given if given.name == "results.json" and given.is_file() else given / "results.json"
    if not path.is_file():
        raise ReportError(f"{directory}: no results.json (write one with asr evaluate --report DIR)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = [_row(u) for u in data["utterances"]]
        meta = data.get("meta") or {}
        if not isinstance(meta, dict):
            raise TypeError(f"its meta is a {type(meta).__name__}, not an object")
    except UnicodeDecodeError as e:  # asr writes UTF-8; another encoding would be scored as other words
        raise ReportError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): "
                          "not a results file asr wrote") from None
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError) as e:  # (JSONDecodeError is a ValueError)
        raise ReportError(f"{path}: not a results file ({type(e).__name__}: {e})") from None
    return build_report(rows, meta)


def _row(u: dict) -> _Row:
    """One utterance of results.json; TypeError for fields of the wrong type (they would fail
    later, in scoring or in sorting the speakers, far from the file)."""
    reference, hypothesis, speaker = u["reference"], u["hypothesis"], u.get("speaker")
    if not (isinstance(reference, str) and isinstance(hypothesis, str)):
        raise TypeError(f"utterance {u.get('id')!r}: its reference and hypothesis must be text, not "
                        f"{type(reference).__name__} and {type(hypothesis).__name__}")
    return _Row(str(u["id"]), None if speaker is None else str(speaker), reference, hypothesis,
                str(u.get("audio_filepath") or ""))
