"""Hotwords: boost a user's words and phrases (names, jargon) during beam search.

``HotwordLM`` is a flashlight language model that wraps the real one (KenLM or none) and adds
a bonus while the hypothesis is inside a hotword phrase. A partial match that breaks off gives
its bonus back, so only complete phrases gain (the idea of icefall's context graph). The search
calls the LM once per word with a lexicon and once per token without one; phrases are matched
in those units. A hotword word the LM does not know is scored as the LM's rarest word when its
<unk> is less likely than that, so that the bonus can make it win.
"""

from __future__ import annotations

from pathlib import Path

from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

from asr.text import normalize_text


class HotwordsError(ValueError):
    pass


# A --hotwords value with one of these suffixes or in a folder that exists (and no comma) names a
# file: if there is none, a typo in its name must not quietly boost the phrase "names txt" ("AC/DC"
# stays a phrase).
_FILE_SUFFIXES = (".txt", ".lst", ".list", ".csv", ".tsv")


def parse_hotwords(spec: str | Path | list[str] | tuple[str, ...] | None) -> list[str]:
    """Normalized phrases from a list, a file (one per line) or a comma-separated string."""
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        items = list(spec)
    elif Path(spec).is_file():
        try:
            items = Path(spec).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise HotwordsError(f"{spec}: hotwords file is not UTF-8 text ({e.reason} at byte {e.start})") from None
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
    return phrases


class PhraseMatcher:
    """Prefix matching of unit sequences. A state is (matched units, bonus not yet earned)."""

    def __init__(self, phrases: list[tuple[int, ...]], bonuses: list[tuple[float, ...]],
                 boundary: int | None = None):
        self.gain: dict[tuple[int, ...], float] = {}  # phrase prefix -> bonus of its last unit
        self.complete = set(phrases)
        self.extendable = {p[:i] for p in phrases for i in range(1, len(p))}
        for phrase, bonus in zip(phrases, bonuses):
            for i in range(1, len(phrase) + 1):
                self.gain[phrase[:i]] = bonus[i - 1]
        # With token units a phrase is |w o r d|: the start of the utterance counts as a |.
        self.boundary = boundary
        self.initial = ((boundary,), 0.0) if boundary is not None else ((), 0.0)

    def step(self, state: tuple[tuple[int, ...], float], unit: int) -> tuple[tuple, float]:
        """-> (new state, score change)."""
        matched, pending = state
        cand = matched + (unit,)
        if cand in self.gain:
            gain = self.gain[cand]
            if cand in self.complete:  # earned: a later break cannot take it back
                return ((cand, 0.0) if cand in self.extendable else self.initial), gain
            return (cand, pending + gain), gain
        if not matched:
            return ((), 0.0), 0.0
        # The match broke off: give back what was not earned and start again from this unit.
        new, change = self.step(((), 0.0), unit)
        return new, change - pending

    def finish(self, state) -> float:
        matched, pending = state
        if self.boundary is not None and matched + (self.boundary,) in self.complete:
            return self.gain[matched + (self.boundary,)]  # the end of the utterance closes the word
        return -pending


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

    def finish(self, state):
        base, match, _ = self.states[state]
        score = 0.0
        if base is not None:
            base, score = self.base.finish(base)
            score *= self.lm_weight
        return state, score + self.matcher.finish(match)
