"""Comparing two error reports (``asr compare``): which utterances got better or worse, and
whether the WER difference is larger than the test set's speakers would give by chance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.metrics import paired_bootstrap
from asr.report import Report, ReportError, load_report, no_common_utterances
from asr.report_text import UNDEFINED, pct, sclite_lines, shown_rates
from asr.text import plural


@dataclass
class Comparison:
    a: Report  # the utterances both reports scored, in A's order
    b: Report
    only_a: list[str]
    only_b: list[str]
    reference_differs: list[str]

    def changes(self) -> tuple[list[tuple], list[tuple]]:
        """(better, worse): (utterance in A, utterance in B) pairs, biggest change first."""
        pairs = list(zip(self.a.utterances, self.b.utterances))
        delta = lambda p: p[1].words.errors - p[0].words.errors  # noqa: E731
        better = sorted((p for p in pairs if delta(p) < 0), key=delta)
        worse = sorted((p for p in pairs if delta(p) > 0), key=delta, reverse=True)
        return better, worse


def compare_reports(dir_a: str | Path, dir_b: str | Path) -> Comparison:
    a, b = load_report(dir_a), load_report(dir_b)
    for name, report in ((dir_a, a), (dir_b, b)):  # said as it is, not as "no utterance ids in common"
        if not report.utterances:
            raise ReportError(f"{name}: the report has no utterances, so nothing to compare")
    a.by_id(dir_a)  # refuses repeated ids, as B's
    by_id = b.by_id(dir_b)
    common = [u for u in a.utterances if u.id in by_id]
    if not common:
        raise no_common_utterances((dir_a, dir_b))
    only_a = [u.id for u in a.utterances if u.id not in by_id]
    ids_a = {u.id for u in a.utterances}
    only_b = [u.id for u in b.utterances if u.id not in ids_a]
    differs = [u.id for u in common if u.reference != by_id[u.id].reference]
    return Comparison(Report(common, a.meta), Report([by_id[u.id] for u in common], b.meta),
                      only_a, only_b, differs)


def render_comparison(c: Comparison, limit: int = 0) -> str:
    sa, sb = c.a.summary(), c.b.summary()
    ra, rb = shown_rates(sa), shown_rates(sb)  # None over no reference words, as in the reports
    lines = [f"{plural(len(c.a.utterances), 'utterance')} in both reports"
             + (f"; {len(c.only_a)} only in A, {len(c.only_b)} only in B (left out)" if c.only_a or c.only_b else "")]
    if c.reference_differs:
        lines.append(f"warning: {len(c.reference_differs)} utterance(s) have different references in A and B, "
                     f"e.g. {c.reference_differs[0]}")
    lines.append(f"{'':8}{'A':>10}{'B':>10}{'B - A':>10}")
    for key in ("wer", "cer", "ser"):
        change = UNDEFINED if ra[key] is None or rb[key] is None else f"{100 * (rb[key] - ra[key]):+.2f}%"
        lines.append(f"{key.upper():8}{pct(ra[key]):>10}{pct(rb[key]):>10}{change:>10}")
    for key in ("substitutions", "deletions", "insertions"):
        lines.append(f"{key[:3]:8}{sa[key]:>10}{sb[key]:>10}{sb[key] - sa[key]:>+10}")
    if c.reference_differs:  # the bootstrap scores both on A's references: its "B - A" would not be the table's
        lines.append("WER B - A: not tested for significance, as the references differ")
    elif ra["wer"] is None:  # a difference of insertion counts, not of rates
        lines.append("WER B - A: not tested for significance, as the utterances in both have no reference words")
    else:
        lines.append(_significance(c))
    better, worse = c.changes()
    lines.append(f"better in B: {len(better)}, worse in B: {len(worse)}, "
                 f"unchanged: {len(c.a.utterances) - len(better) - len(worse)}")
    for title, pairs in (("Better in B", better), ("Worse in B", worse)):
        if not pairs:
            continue
        shown = pairs[:limit] if limit else pairs
        lines += ["", f"{title} ({len(pairs)}{f', first {len(shown)}' if len(shown) < len(pairs) else ''}):"]
        for ua, ub in shown:
            lines.append(f"{ua.id} ({ua.speaker or '-'}): {ua.words.errors} -> {ub.words.errors} word errors")
            for tag, u in (("A", ua), ("B", ub)):
                ref, hyp = sclite_lines(u.alignment)
                lines += [f"  {tag} {ref}", f"    {hyp}"]
    return "\n".join(lines)


# Resampling fewer speakers than this gives an "interval" made of their own deltas (2 speakers: 3
# distinct resamples); utterances are resampled instead, and the output says so. Fewer utterances
# than this are not resampled at all (one utterance resamples to itself: a zero-width "interval").
MIN_SPEAKERS = 10


def _significance(c: Comparison) -> str:
    """The WER difference's 95% interval, resampling speakers when every utterance has one (and
    there are at least MIN_SPEAKERS), else utterances (at least as many)."""
    pairs = list(zip(c.a.utterances, c.b.utterances))
    speakers = {ua.speaker for ua, _ in pairs}
    has_speakers = all(ua.speaker for ua, _ in pairs)
    by_speaker = has_speakers and len(speakers) >= MIN_SPEAKERS
    boot = paired_bootstrap([ua.words.errors for ua, _ in pairs], [ub.words.errors for _, ub in pairs],
                            [ua.words.reference_length for ua, _ in pairs],
                            [ua.speaker for ua, _ in pairs] if by_speaker else None)
    if boot.groups < MIN_SPEAKERS:
        few = plural(len(pairs), "utterance") + (" is" if len(pairs) == 1 else " are")
        if has_speakers:
            few = f"{plural(len(speakers), 'speaker')} and {plural(len(pairs), 'utterance')} are"
        return (f"WER B - A: {100 * boot.difference:+.2f} points; not tested for significance, "
                f"as {few} too few to resample")
    return (f"WER B - A: {100 * boot.difference:+.2f} points, {boot.level:.0%} interval "
            f"[{100 * boot.low:+.2f}, {100 * boot.high:+.2f}] (paired bootstrap over {boot.groups} "
            f"{'speakers' if by_speaker else 'utterances'}, {boot.resamples} resamples); "
            f"B better in {boot.prob_b_better:.0%} of them"
            + (f"; utterances, as {len(speakers)} speakers are too few to resample"
               if has_speakers and not by_speaker else ""))
