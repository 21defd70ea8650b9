"""ROVER: combine several recognizers' word hypotheses into one (``asr combine`` for reports,
``asr evaluate|transcribe --combine`` for models run live).

Fiscus (1997), "A post-processing system to yield reduced word error rates: Recognizer Output
Voting Error Reduction (ROVER)", the method of NIST SCTK's ``rover``:

1. Align the hypotheses into one *word transition network*: a sequence of slots, each holding
   one word (or nothing) per system. The first hypothesis makes the first network; each next
   one is aligned to it by edit distance with sclite's costs (``align``), where a word costs
   nothing in a slot that already holds it, and words the network lacks open new slots (empty
   for the earlier systems). As in rover (without ``-T``), the words' times play no part.
   Words are compared as scored (``normalize_text``): an upper-case LM's ``CAT`` is ``cat``.
2. Vote in every slot: the word (or the empty word) with the most votes wins, spelled as the
   first system that voted for it spelled it. This is rover's frequency vote (``-a 1.0``):
   mixing in our word confidences (``avgconf``) did worse on speechocean762's valid set. Ties
   go to the system listed first (rover keeps the first of equal scores), so list the best
   system first.

Systems make different errors (other units, depths, seeds), and where two of three agree
they are more often right: five of our speechocean762 packages combined score 3 points
below the best of them (recipes/speechocean762/README.md).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import replace
from functools import lru_cache
from typing import Sequence

from asr.evaluate import Evaluation, UtteranceResult, merged_skips
from asr.metrics import char_errors, word_errors
from asr.report import Report, ReportError, build_report, no_common_utterances
from asr.results import Result, Segment, Word, split_at_pauses
from asr.text import normalize_text

Slot = tuple  # one word (str) or None per system aligned so far


# sclite's word costs: a substitution (4) costs less than a deletion and an insertion (3 + 3),
# but two substitutions cost more than a deletion, a match and an insertion, so hypotheses
# shifted by a word line up on the words they share (equal costs paired them word for word).
# rover's own costs also make a slot some system left empty all but free to skip (0.001) and a
# cheap place for any word (1): that did worse in simulation (3 to 5 systems, 10-40% errors).
MATCH, SUBSTITUTE, SKIP, NEW = 0, 4, 3, 3


@lru_cache(maxsize=1 << 16)
def _same(word: str | None) -> str | None:
    """What a word is compared by: the word as scored, so that systems whose LMs write ``THE``
    and ``the`` vote together (a word normalizing to nothing is compared as written)."""
    return None if word is None else normalize_text(word) or word


def align(network: list[Slot], words: Sequence[str]) -> list[Slot]:
    """Add one system's words to the network (one more entry per slot), by minimum edit distance
    with sclite's costs, where a word matches a slot that any system put it in."""
    k = len(network[0]) if network else 0
    n, m = len(network), len(words)
    held = [{_same(w) for w in slot} for slot in network]
    keys = [_same(w) for w in words]
    cost = [[0] * (m + 1) for _ in range(n + 1)]  # [i][j]: the first i slots aligned with the first j words
    move = [[""] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0], move[i][0] = cost[i - 1][0] + SKIP, "skip"
    for j in range(1, m + 1):
        cost[0][j], move[0][j] = cost[0][j - 1] + NEW, "new"
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j], move[i][j] = min(
                (cost[i - 1][j - 1] + (MATCH if keys[j - 1] in held[i - 1] else SUBSTITUTE), "pair"),
                (cost[i - 1][j] + SKIP, "skip"),
                (cost[i][j - 1] + NEW, "new"),
                key=lambda c: c[0])  # min keeps the first of equal costs: pair, skip, new (as sclite)
    out: list[Slot] = []
    i, j = n, m
    while i or j:
        if move[i][j] == "pair":
            out.append(network[i - 1] + (words[j - 1],))
            i, j = i - 1, j - 1
        elif move[i][j] == "skip":
            out.append(network[i - 1] + (None,))
            i -= 1
        else:
            out.append((None,) * k + (words[j - 1],))
            j -= 1
    return out[::-1]


def word_network(hypotheses: Sequence[str]) -> list[Slot]:
    """Each hypothesis (a string of words) aligned into one network of slots."""
    network: list[Slot] = [(w,) for w in hypotheses[0].split()] if hypotheses else []
    for k, hyp in enumerate(hypotheses[1:], start=1):
        words = hyp.split()
        network = align(network, words) if network else [(None,) * k + (w,) for w in words]
    return network


def vote_slots(network: list[Slot], weights: Sequence[float] | None = None) -> list[tuple[str, int, int]]:
    """(winning word, first system that voted for it, the word's position in that system's
    hypothesis) per slot that the empty word None did not win. Words that normalize alike are one
    vote's; the winner is spelled as that first system spelled it."""
    out = []
    position = [0] * (len(network[0]) if network else 0)  # words of each system passed so far
    for slot in network:
        votes: dict[str | None, float] = defaultdict(float)
        first: dict[str | None, int] = {}
        for s, word in enumerate(slot):
            votes[_same(word)] += 1.0 if weights is None else weights[s]
            first.setdefault(_same(word), s)
        # Rounded, so that weights whose sums differ only by float rounding (0.1 + 0.2 against
        # 0.3) tie, and the tie goes to the system listed first, as it does with whole votes.
        best = max(votes, key=lambda w: (round(votes[w], 9), -first[w]))
        if best is not None:
            out.append((slot[first[best]], first[best], position[first[best]]))
        for s, word in enumerate(slot):
            position[s] += word is not None
    return out


def vote(network: list[Slot], weights: Sequence[float] | None = None) -> list[str]:
    """Each slot's most voted word (the empty word None wins by leaving the slot out)."""
    return [word for word, _, _ in vote_slots(network, weights)]


def combine(hypotheses: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """ROVER of one utterance's hypotheses, best system first: combine(["a b c", "a x c", "a x"]) == "a x c"."""
    if weights is not None and len(weights) != len(hypotheses):
        raise ValueError(f"{len(weights)} weights for {len(hypotheses)} hypotheses")
    return " ".join(vote(word_network(hypotheses), weights))


def combine_results(results: Sequence[Result], weights: Sequence[float] | None = None,
                    pause: float = 0.6, gap: float = 0.5) -> Result:
    """ROVER of several systems' transcripts of one file, best system first, keeping word times.

    As rover does with time-marked (CTM) input, the words are first cut into stretches at the
    silences no system put a word in (gaps of more than ``gap`` seconds), and each stretch is
    aligned and voted on its own: that keeps an hour-long file's alignment cheap, and words far
    apart in time never share a slot. A winning word keeps the times and confidence it had in the
    first system that voted for it. Without word times, whole transcripts are combined.
    """
    if not results:
        raise ValueError("no results to combine")
    if weights is not None and len(weights) != len(results):
        raise ValueError(f"{len(weights)} weights for {len(results)} results")
    first = results[0]
    if any(len(r.words) != len(r.text.split()) for r in results):  # no usable times
        text = combine([r.text for r in results], weights)
        return Result(text, first.duration, [Segment(0.0, first.duration, text)] if text else [], [],
                      None if text else _heard_nothing(results))
    timed = sorted(((w.start, w.end, s, k) for s, r in enumerate(results) for k, w in enumerate(r.words)))
    words: list[Word] = []
    stretch: list[tuple] = []
    end = -1.0
    for item in timed + [(float("inf"), float("inf"), -1, -1)]:
        if stretch and item[0] - end > gap:
            per_system = [[results[s].words[k] for _, _, s2, k in stretch if s2 == s] for s in range(len(results))]
            network = word_network([" ".join(w.word for w in ws) for ws in per_system])
            words += [per_system[s][k] for _, s, k in vote_slots(network, weights)]
            stretch, end = [], -1.0
        stretch.append(item)
        end = max(end, item[1])
    words = _in_time_order(words)
    text = " ".join(w.word for w in words)
    scored = [w.confidence for w in words if w.confidence is not None]
    confidence = round(sum(scored) / len(scored), 4) if scored else None
    return Result(text, first.duration, split_at_pauses(words, text, pause), words,
                  confidence if text else _heard_nothing(results))


def _heard_nothing(results: Sequence[Result]) -> float | None:
    """The confidence of a combined transcript of nothing: as a winning word's, the first system's
    that gave it (its blank posterior, asr.alignment; None where it ran no model: silence)."""
    return next((r.confidence for r in results if not r.text), None)


def _in_time_order(words: list[Word]) -> list[Word]:
    """The voted words with times that never go back: slots are aligned by text, and each winner
    brings its own system's times, so "i" (4.80 s) from one system can follow "if" (4.92 s) from
    another; a word then starts where the one before it ended (subtitle cues stay well formed)."""
    out, end = [], 0.0
    for w in words:
        start = max(w.start, end)
        end = max(w.end, start)
        out.append(w if (start, end) == (w.start, w.end) else replace(w, start=start, end=end))
    return out


def _voted(utterances, by_id: list[dict], weights) -> list[UtteranceResult]:
    """Each utterance (scored or not) with the ROVER of every system's hypothesis for its id."""
    return [UtteranceResult(u.id, u.audio_filepath, u.reference,
                            combine([b[u.id].hypothesis for b in by_id], weights), u.speaker) for u in utterances]


def _by_occurrence(rows) -> dict:
    """Rows keyed by (id, how many rows before had it): an id that a manifest repeats (evaluate warns)
    has its k-th row matched to every system's k-th, not to the last."""
    seen: Counter = Counter()
    keyed = {}
    for u in rows:
        keyed[(u.id, seen[u.id])] = u
        seen[u.id] += 1
    return keyed


def combine_evaluations(evaluations: Sequence[Evaluation], weights: Sequence[float] | None = None) -> Evaluation:
    """ROVER of several systems' evaluations of one manifest (best first), scored again.
    Utterances that any system could not read or decode are left out (and listed as skipped): the
    audio seconds are those of the utterances voted on, and the decode seconds each system's
    share of its own for that audio (its RTF times it), so the RTF is the sum of the systems'."""
    by_key, shared = _shared(evaluations)
    rows = []
    for k in shared:
        u = by_key[0][k]
        rows.append(UtteranceResult(u.id, u.audio_filepath, u.reference,
                                    combine([b[k].hypothesis for b in by_key], weights), u.speaker, u.seconds))
    skipped = merged_skips(evaluations)
    refs, hyps = [r.reference for r in rows], [r.hypothesis for r in rows]
    truncated = list(dict.fromkeys(line for e in evaluations for line in e.truncated))  # the same files each time
    audio = sum(r.seconds for r in rows)
    shares = [audio / e.audio_seconds if e.audio_seconds else 1.0 for e in evaluations]  # of the voted audio
    decode = sum(e.decode_seconds * k for e, k in zip(evaluations, shares))
    retry = sum(e.retry_seconds * k for e, k in zip(evaluations, shares))  # so the RTF is the sum of the systems'
    return Evaluation(rows, word_errors(refs, hyps), char_errors(refs, hyps), audio, decode, skipped, truncated,
                      retry, sum(e.retried_batches for e in evaluations))


def _shared(evaluations: Sequence[Evaluation]) -> tuple[list[dict], list]:
    """Each evaluation's utterances by key (``_by_occurrence``), and the keys every one scored, in
    the first one's order."""
    by_key = [_by_occurrence(e.utterances) for e in evaluations]
    return by_key, [k for k in by_key[0] if all(k in b for b in by_key[1:])]


def shared_rates(evaluations: Sequence[Evaluation]) -> list[tuple[float, float]]:
    """Each system's (WER, CER) over the utterances every system scored, those
    ``combine_evaluations`` votes on: beside the vote's own, rates of the same utterances."""
    by_key, shared = _shared(evaluations)
    rates = []
    for b in by_key:
        refs, hyps = [b[k].reference for k in shared], [b[k].hypothesis for k in shared]
        rates.append((word_errors(refs, hyps).rate, char_errors(refs, hyps).rate))
    return rates


def combine_reports(reports: Sequence[Report], names: Sequence[str], weights: Sequence[float] | None = None
                    ) -> tuple[Report, list[str]]:
    """ROVER of ``asr evaluate --report`` reports (``load_report``; best first), named in errors
    by ``names`` (their directories) -> (combined report, notes).

    Utterances missing from any report are left out and counted in the notes; all reports
    must hold the same reference for an utterance (else they scored different test sets).
    """
    if len(reports) < 2:
        raise ReportError("combining needs at least two reports")
    if weights is not None and len(weights) != len(reports):
        raise ReportError(f"{len(weights)} weights for {len(reports)} reports")
    by_id = [r.by_id(name) for r, name in zip(reports, names)]
    common = [u for u in reports[0].utterances if all(u.id in b for b in by_id[1:])]
    if not common:
        raise no_common_utterances(names)
    notes = []
    left_out = len({u.id for r in reports for u in r.utterances}) - len(common)
    if left_out:
        notes.append(f"{left_out} utterance(s) are not in every report and were left out")
    for name, b in zip(names[1:], by_id[1:]):
        differs = [u.id for u in common if b[u.id].reference != u.reference]
        if differs:
            raise ReportError(f"{name}: {len(differs)} utterance(s) have another reference than in "
                              f"{names[0]} (e.g. {differs[0]}): not the same test set")
    meta = {"combined": [str(n) for n in names], "method": "ROVER, frequency vote, ties to the first",
            "weights": list(weights) if weights is not None else None,
            "systems": [r.meta.get("model", "?") for r in reports],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    return build_report(_voted(common, by_id, weights), meta), notes
