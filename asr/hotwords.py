"""Hotwords: boost a user's words and phrases (names, jargon) during beam search.

``HotwordLM`` is a flashlight language model that wraps the real one (KenLM or none) and adds
a bonus while the hypothesis is inside a hotword phrase. A partial match that breaks off gives
its bonus back, so only complete phrases gain, and a phrase may begin inside one that broke off
(icefall's context graph: an Aho-Corasick automaton). The search calls the LM once per word
with a lexicon and once per token without one; phrases are matched in those units. A hotword
word the LM does not know is scored as the LM's rarest word when its <unk> is less likely than
that, so that the bonus can make it win.
"""

from __future__ import annotations

import math
from pathlib import Path

from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

from asr.text import normalize_text
from asr.user_warnings import warn


class HotwordsError(ValueError):
    pass


# A --hotwords value with one of these suffixes or in a folder that exists (and no comma) names a
# file: if there is none, a typo in its name must not quietly boost the phrase "names txt" ("AC/DC"
# stays a phrase).
_FILE_SUFFIXES = (".txt", ".lst", ".list", ".csv", ".tsv")


def parse_hotwords(spec: str | Path | list[str] | tuple[str, ...] | None) -> list[str]:
    """Normalized phrases from a list, a file (one per line, or several comma-separated) or a
    comma-separated string. A file with none is warned about: it was meant to boost something."""
    if spec is None:
        return []
    if not isinstance(spec, (str, Path, list, tuple)) or (
            isinstance(spec, (list, tuple)) and not all(isinstance(item, str) for item in spec)):
        raise HotwordsError(f"hotwords must be phrases ('a,b c', a list of them) or a file of them, got {spec!r}")
    from_file = False
    if isinstance(spec, (list, tuple)):
        items = list(spec)
    elif Path(spec).is_file():
        try:
            lines = Path(spec).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise HotwordsError(f"{spec}: hotwords file is not UTF-8 text ({e.reason} at byte {e.start})") from None
        # A line may list several, comma-separated, as --hotwords does: a names.csv of "tina,john"
        # is two names, not the phrase "tina john" (normalizing would drop the comma). A line that
        # starts with # is a comment: normalized, "# staff names" would boost "staff names".
        lines = [line for line in lines if not line.lstrip("\ufeff \t").startswith("#")]
        items, from_file = [item for line in lines for item in line.split(",")], True
    elif isinstance(spec, Path) or ("," not in spec and (Path(spec).suffix.lower() in _FILE_SUFFIXES
                                                         or Path(spec).parent.name and Path(spec).parent.is_dir())):
        raise HotwordsError(f"{spec}: hotwords file not found (phrases are given as 'a,b c')")
    else:
        items = str(spec).split(",")
    phrases = []
    for item in items:
        phrase = normalize_text(item)
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    # An empty file or value was meant to boost something (--hotwords "$NAMES", unset): say it boosts
    # nothing, as it still means beam search (a package's rescoring off). An empty list is the API's "none".
    if from_file and not phrases:
        warn(spec, "no hotwords in this file (one phrase a line): nothing is boosted")
    elif isinstance(spec, str) and not phrases:
        warn(f"hotwords {spec!r}", "no phrase in it: nothing is boosted")
    return phrases


class PhraseMatcher:
    """Phrase matching over a stream of units, as an Aho-Corasick automaton (icefall's context
    graph): a phrase is found wherever it ends, also inside a longer match that broke off ("new
    york university" holds "york university" when the other phrase is "new york city").

    A state is (node, covered): the longest end of the stream that begins some phrase, and a bit
    mask of its units that lie in a complete phrase. Each uncovered unit of the node counts a
    provisional bonus while it may still complete one, given back when it leaves the node; a unit
    a complete phrase covers earns that phrase's own bonus for it, for good. So a phrase earns its
    bonuses whatever other phrases share its first units ("new" beside "news", whose tokens share
    the bonus of a word of another length).
    """

    def __init__(self, phrases: list[tuple[int, ...]], bonuses: list[tuple[float, ...]],
                 boundary: int | None = None):
        odd = [b for bonus in bonuses for b in bonus if not math.isfinite(b)]
        if odd:  # an infinite bonus empties every transcript, a NaN one scrambles them
            # (each bonus is the weight times a share of 0 to 1: an infinite one shows the weight)
            shown = next((b for b in odd if math.isinf(b)), odd[0])
            raise HotwordsError(f"hotword weight must be a finite number (--hotword-weight), got {shown}")
        if boundary is not None:
            bonuses = [_off_boundaries(phrase, bonus, boundary) for phrase, bonus in zip(phrases, bonuses)]
        # phrase prefix -> provisional bonus of its last unit: the largest that phrases sharing the
        # prefix give it (as icefall's context graph), as they may give it different ones
        self.gain: dict[tuple[int, ...], float] = {(): 0.0}
        self.bonus: dict[tuple[int, ...], tuple[float, ...]] = {}  # complete phrase -> its own bonuses
        for phrase, bonus in zip(phrases, bonuses):
            self.bonus[phrase] = tuple(bonus)
            for i in range(1, len(phrase) + 1):
                self.gain[phrase[:i]] = max(self.gain.get(phrase[:i], -math.inf), bonus[i - 1])
        self.complete = set(self.bonus)
        # unit -> the largest bonus a phrase gives it anywhere: what a search's lookahead may count on
        self.most: dict[int, float] = {}
        for phrase, bonus in zip(phrases, bonuses):
            for unit, b in zip(phrase, bonus):
                self.most[unit] = max(self.most.get(unit, -math.inf), b)
        # each node's units' provisional bonuses summed (by prefix: memory linear in the nodes): a step
        # asks it of two nodes
        self.total = {(): 0.0}
        for node in sorted(self.gain, key=len)[1:]:
            self.total[node] = self.total[node[:-1]] + self.gain[node]
        # node -> lengths of the phrases it ends with (its "output" links)
        self.ends = {node: [n for n in range(1, len(node) + 1) if node[-n:] in self.complete] for node in self.gain}
        self._longest: dict[tuple[int, ...], tuple[int, ...]] = {}  # stream end -> its node, as asked
        # With token units a phrase is |w o r d|: the start of the utterance counts as a |.
        self.boundary = boundary
        self.initial = ((boundary,), 0) if boundary is not None else ((), 0)

    def _node(self, units: tuple[int, ...]) -> tuple[int, ...]:
        """The longest end of ``units`` that begins a phrase (the failure links, found as needed)."""
        if units not in self._longest:
            self._longest[units] = next(units[k:] for k in range(len(units) + 1) if units[k:] in self.gain)
        return self._longest[units]

    def _pending(self, node: tuple[int, ...], covered: int) -> float:
        """The provisional bonus of ``node``'s units that no complete phrase covers."""
        if not covered:
            return self.total[node]
        return sum(self.gain[node[: i + 1]] for i in range(len(node)) if not covered >> i & 1)

    def step(self, state: tuple[tuple[int, ...], int], unit: int) -> tuple[tuple, float]:
        """-> (new state, score change)."""
        node, covered = state
        if not node and (unit,) not in self.gain:  # most units, outside every phrase
            return state, 0.0
        cand = node + (unit,)
        new = self._node(cand)
        # the node's provisional bonuses go; its units that stay come back at the new node's
        change = -self._pending(node, covered)
        covered >>= len(cand) - len(new)
        for n in reversed(self.ends[new]):  # complete here, longest first: its units earn its bonus
            start = len(new) - n
            for j, b in enumerate(self.bonus[new[start:]]):
                if not covered >> (start + j) & 1:
                    change += b
                    covered |= 1 << (start + j)
        return (new, covered), change + self._pending(new, covered)

    def finish(self, state) -> float:
        change = 0.0
        if self.boundary is not None:  # the end of the utterance closes the word
            state, change = self.step(state, self.boundary)
        node, covered = state
        return change - self._pending(node, covered)


def _off_boundaries(phrase: tuple[int, ...], bonus, boundary: int) -> tuple[float, ...]:
    """``bonus`` with each word boundary's share moved to the word unit before it (the first
    boundary's: after it). A boundary ends one word and begins the next, and the start of the
    utterance counts as one without a step: a share of its own went to whichever phrase covered it
    first, and was charged to an utterance that starts with another word. Moved, a complete
    phrase earns its whole bonus wherever it stands, and a partial one still gives it all back."""
    moved = list(bonus)
    words = [i for i, unit in enumerate(phrase) if unit != boundary]
    if not words:
        if any(moved):
            raise HotwordsError(f"hotword of no unit but the word boundary, with a bonus: {phrase}")
        return tuple(moved)
    for i, unit in enumerate(phrase):
        if unit == boundary and moved[i]:
            to = max((k for k in words if k < i), default=words[0])
            moved[to], moved[i] = moved[to] + moved[i], 0.0
    return tuple(moved)


class HotwordLM(CTCDecoderLM):
    """``lm_weight * (base LM score + lift) + hotword bonus``; use it with the search's lm_weight = 1.

    ``lifts`` (unit -> log10) raise the base score of hotword words the LM does not know: it
    scores them as its <unk>, which can be so unlikely (-99 in an imported Sphinx LM) that no
    bonus makes up for it (asr/search_space.py sets them)."""

    def __init__(self, base, lm_weight: float, matcher: PhraseMatcher, lifts: dict[int, float] | None = None):
        CTCDecoderLM.__init__(self)
        self.base, self.lm_weight, self.matcher = base, lm_weight, matcher
        self.lifts = lifts or {}
        self.states: dict = {}

    def start(self, start_with_nothing: bool = False):
        self.states = {}  # one search at a time; earlier states are dead
        state = CTCDecoderLMState()
        base = self.base.start(start_with_nothing) if self.base is not None else None
        self.states[state] = (base, self.matcher.initial, 0.0)
        return state

    def score(self, state, usr_token_idx: int):
        child = state.child(usr_token_idx)
        if child not in self.states:
            base, match, _ = self.states[state]
            score = 0.0
            if base is not None:
                base, score = self.base.score(base, usr_token_idx)
                score = (score + self.lifts.get(usr_token_idx, 0.0)) * self.lm_weight
            match, bonus = self.matcher.step(match, usr_token_idx)
            self.states[child] = (base, match, score + bonus)
        return child, self.states[child][2]

    def lookahead(self, state, usr_token_idx: int) -> float:
        """The word's score after ``state``, raised to the largest bonus a phrase gives it anywhere:
        the lexicon's trie holds it, for the sentence start, as the search's estimate of the word
        while it is spelled (taken back when the word ends). A phrase's later words earn their bonus
        only after the words before them: estimated at the start, they looked no likelier than any
        other word, and the beam dropped them before their bonus came ("the sheep")."""
        _, score = self.score(state, usr_token_idx)
        _, at_start = self.matcher.step(self.states[state][1], usr_token_idx)
        return score + max(0.0, self.matcher.most.get(usr_token_idx, 0.0) - at_start)

    def finish(self, state):
        base, match, _ = self.states[state]
        score = 0.0
        if base is not None:
            base, score = self.base.finish(base)
            score *= self.lm_weight
        return state, score + self.matcher.finish(match)
