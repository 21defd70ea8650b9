"""What a beam search searches over, loaded from its files: the tokens, the lexicon's words, the
KenLM model and the hotword phrases (see asr/beam_search.py for how the files choose the search).

Loading checks that the files go together: a lexicon's words are looked up in a word LM, so an
LM over the model's tokens is refused with a lexicon, and lexicon words the LM does not know
are counted; hotword words the LM does not know get a floor score (``SearchSpace.lifts``).
KenLM is loaded once, with every word it will be asked about or searched for (flashlight maps a
Dictionary's words to the LM's at load), and scores the vocabulary once for all these questions.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from flashlight.lib.text.decoder import SmearingMode, Trie, ZeroLM
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.hotwords import HotwordLM, parse_hotwords
from asr.lexicon import MAX_HOMOPHONES, Lexicon, as_normalized, lexicon_from_words, read_lexicon_lines, spell
from asr.arpa import LMInfo, inspect_lm
from asr.lm import KENLM_MAX_ORDER, UNK, LMError
from asr.text import WORD_SEP
from asr.tokenizers import Tokenizer
from asr.user_warnings import quiet_stderr

# Lexicon words the LM does not know score as its <unk>: said when more than this share of them.
UNKNOWN_WORDS_NOTED = 0.05


def _load_kenlm(info: LMInfo, words: Dictionary) -> KenLM:
    if info.order and info.order > KENLM_MAX_ORDER:
        raise LMError(f"{info.path}: a {info.order}-gram LM; the KenLM in flashlight-text loads up to "
                      f"{KENLM_MAX_ORDER}-grams")
    try:
        with quiet_stderr():  # KenLM prints progress bars to fd 2 while loading
            return KenLM(str(info.path), words)
    except Exception as e:  # KenLM's errors arrive as RuntimeError: where it threw, then why
        lines = str(e).strip().splitlines()
        raise LMError(f"{info.path}: KenLM cannot load it: {' '.join(lines[1:2] or lines[:1])}") from None


def _add_hotwords(lex: Lexicon, added: dict[str, list[str]], hot: set[str], notes: list[str]) -> set[str]:
    """Add hotwords the lexicon lacks; returns those it cannot hold. Its trie holds MAX_HOMOPHONES
    words a spelling and drops the later ones: a hotword spelled as that many words already (a phone
    system's "kerri" as K EH R IY: kerry, carrie, ...) takes the place of the last of them that is
    no hotword (``hot``), the least likely in an LM's lexicon, rather than be dropped itself."""
    left_out = set()
    by_spelling: dict[tuple[str, ...], list[str]] = {}
    for w, spellings in lex.items():
        for spelling in spellings:
            by_spelling.setdefault(tuple(spelling), []).append(w)
    shown = " ".join
    for word, spelling in added.items():
        same = by_spelling.setdefault(tuple(spelling), [])
        if len(same) >= MAX_HOMOPHONES:
            if not (others := [w for w in same if w not in hot]):
                notes.append(f"hotword {word!r} left out: {MAX_HOMOPHONES} other hotwords are spelled the same "
                             f"({shown(spelling)}), as many as the search holds")
                left_out.add(word)
                continue
            last = others[-1]
            same.remove(last)
            lex[last] = [s for s in lex[last] if s != spelling]
            if not lex[last]:
                del lex[last]
            notes.append(f"hotword {word!r}: {last!r}, spelled the same ({shown(spelling)}), left out of the "
                         f"search to make room ({MAX_HOMOPHONES} words a spelling)")
        lex[word] = [spelling]
        same.append(word)
    return left_out


def _load_words(info: LMInfo, names) -> tuple[KenLM, Dictionary, list[str]]:
    """KenLM loaded for these words and <unk> (the default index), and the words in index order.
    flashlight maps the words to the LM's ids at load, and refuses to score any added later:
    every word that will be scored (searched, looked up or asked about) must be among them."""
    names = list(dict.fromkeys([*names, UNK]))  # (a repeat is an error there)
    words = Dictionary(names)
    words.set_default_index(words.get_index(UNK))
    return _load_kenlm(info, words), words, names


def _unigram_scores(kenlm: KenLM, words: Dictionary) -> list[float]:
    """log10 p(word) of each word index under the LM, without context (a word it lacks gets its <unk>'s)."""
    null, score = kenlm.start(True), kenlm.score
    return [score(null, i)[1] for i in range(words.index_size())]


def _unknown_indices(info: LMInfo, words: Dictionary, scores: list[float] | None, indices) -> set[int]:
    """The word indices the LM does not know. An ARPA file lists its words; KenLM scores any
    word outside a binary file as its <unk>, to the bit (``scores``: ``_unigram_scores``)."""
    if not info.binary:
        known = set(info.words)
        return {i for i in indices if words.get_entry(i) not in known}
    unk = scores[words.get_index(UNK)]
    return {i for i in indices if scores[i] == unk}


def _knows(info: LMInfo, words: Dictionary | None = None, names: list[str] | None = None,
           scores: list[float] | None = None) -> Callable[[set[str]], set[str]]:
    """words -> those the LM holds, as ``read_lexicon`` asks. A binary LM's word list is not
    readable: it answers for the ``words`` it was loaded with (``names``, their ``scores``)."""
    if not info.binary:
        vocabulary = set(info.words)
        return lambda asked: asked & vocabulary

    def knows(asked: set[str]) -> set[str]:  # (asked only when some lexicon word normalizes to another)
        indices = {i: w for i, w in enumerate(names) if w in asked}
        return {indices[i] for i in indices.keys() - _unknown_indices(info, words, scores, indices)}

    return knows


def lm_knows(info: LMInfo) -> Callable[[set[str]], set[str]]:
    """words -> those the LM holds (for a lexicon read without a search: ``asr export --lm``). A
    binary LM is loaded for the words asked, once, when they are asked."""
    if not info.binary:
        return _knows(info)

    def known(asked: set[str]) -> set[str]:
        kenlm, words, names = _load_words(info, sorted(asked - {UNK}))
        return _knows(info, words, names, _unigram_scores(kenlm, words))(asked)

    return known


def _token_lm_refusal(path, lexicon) -> LMError:
    return LMError(f"{path}: an LM over the model's tokens (| between words), and the lexicon search "
                   f"scores the words of {lexicon} with it: give a word LM (asr lm build TEXT) with the "
                   "lexicon, or this LM without one (--lexicon none)")


@dataclass
class SearchSpace:
    """What the files give: tokens, words, the loaded LM and hotword phrases; shared by decoders."""

    tokens: Dictionary
    words: Dictionary | None  # None without a lexicon
    lexicon: Lexicon | None
    kenlm: KenLM | None
    phrases: list[tuple[int, ...]] = field(default_factory=list)
    shares: list[tuple[float, ...]] = field(default_factory=list)  # of the hotword weight, per unit
    # word index -> log10 added to its LM score: hotword words the LM scores as a hopeless <unk>
    lifts: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was left out, for the user
    source: str = ""  # the LM and lexicon files, for describe()
    zero_lm: ZeroLM = field(default_factory=ZeroLM, repr=False)  # the LM when there is none
    _tries: dict = field(default_factory=dict, repr=False)  # id(lm) -> trie, for kenlm and zero_lm
    _scores: list[float] | None = field(default=None, repr=False)  # word index -> its unigram log10 p

    @classmethod
    def load(cls, tokenizer: Tokenizer, lm: str | Path | None = None, lexicon: str | Path | None = None,
             hotwords=None) -> "SearchSpace":
        """The search space of these files, shared with any decoder that asked for the same ones
        while it lives (a package's phone systems search one lexicon with one LM: loaded once)."""
        phrases = parse_hotwords(hotwords)  # first: a value with no phrase is said even when shared
        key = _share_key(tokenizer, lm, lexicon, phrases)
        space = _SHARED.get(key) if key else None
        if space is None:
            space = cls._load(tokenizer, lm, lexicon, phrases)
            if key:
                _SHARED[key] = space
        if space.source != (source := _source(lm, lexicon)):  # the same files under other names: its own
            space = replace(space, source=source)  # (the LM, tries and notes still shared)
        return space

    @classmethod
    def _load(cls, tokenizer: Tokenizer, lm, lexicon, phrases: list[str]) -> "SearchSpace":
        info = inspect_lm(lm) if lm else None
        lexicon_free = isinstance(lexicon, str) and lexicon.lower() == "none"
        notes: list[str] = []
        lex = kenlm = words = scores = None
        written: dict[str, str] = {}
        from_file = bool(lexicon) and not lexicon_free
        if from_file:
            if info is not None and info.unit in ("char", "token"):  # a word LM has no | among its words
                raise _token_lm_refusal(info.path, lexicon)
            lines = read_lexicon_lines(lexicon, tokenizer)
            knows = None
            if info is not None:  # loaded once, for every word it will be asked about or searched for
                asked = [*lines.words(), *(w for p in phrases for w in p.split() if spell(w, tokenizer))]
                kenlm, words, names = _load_words(info, [*asked, WORD_SEP] if info.binary else asked)
                scores = _unigram_scores(kenlm, words) if info.binary else None  # how a binary LM says what it knows
                knows = _knows(info, words, names, scores)
            report = lines.report(knows)
            lex = report.lexicon
            notes += report.notes(str(lexicon))
        elif info is not None and not lexicon_free and not info.searches_lexicon_free(tokenizer):
            if info.binary:
                raise LMError(f"{info.path}: a binary KenLM file has no readable word list; give --lexicon "
                              "(or --lexicon none for an LM over the model's tokens)")
            report = lexicon_from_words(info.words, tokenizer, source=str(info.path))
            lex = report.lexicon
            if report.skipped:
                notes.append(report.summary(str(info.path)))
        lexicon_words = list(lex) if from_file else []
        if lex is not None and phrases:
            # words the LM writes otherwise (an upper-case LM's THE, in its lexicon too) are searched as
            # written: a hotword names them so, rather than be added beside them as a word the LM does not know
            written = {n: w for w in lex if (n := as_normalized(w)) != w and n not in lex}
            added = {w: spelling for w in dict.fromkeys(w for p in phrases for w in p.split()
                                                        if w not in lex and w not in written)
                     if (spelling := spell(w, tokenizer))}
            if added:
                hot = {written.get(w, w) for p in phrases for w in p.split()}
                left_out = _add_hotwords(lex, added, hot, notes)
                phrases = [p for p in phrases if not left_out.intersection(p.split())]  # (said in the notes)
        tokens = Dictionary(list(tokenizer.tokens))
        # With a lexicon file and an LM, ``words`` were loaded with the LM above: those beyond the
        # lexicon (as written where it has them normalized) are never searched, and n-best
        # rescoring scores them as the LM does.
        if words is None and lex is not None:
            words = Dictionary([*lex, UNK] if UNK not in lex else list(lex))
            words.set_default_index(words.get_index(UNK))
            lm_words = words
        elif lex is None:
            lm_words = Dictionary([*tokenizer.tokens, UNK])
            if info is not None and not info.binary and not info.is_token_lm(tokenizer) and tokenizer.kind != "char":
                raise LMError(f"{info.path}: lexicon-free search scores the model's tokens with the LM, and its "
                              f"units are not this model's {tokenizer.kind} pieces: build one with `asr lm build "
                              "--unit token --tokenizer MODEL`, or give a word LM and a lexicon")
        if kenlm is None and info is not None:
            kenlm = _load_kenlm(info, lm_words)
        space = cls(tokens, words, lex, kenlm, notes=notes, source=_source(lm, lexicon), _scores=scores)
        if kenlm is not None and lexicon_words:
            space._check_lexicon_words(info, lexicon, lexicon_words)
        space._add_phrases(phrases, tokenizer, written)
        if kenlm is not None and words is not None and phrases:
            space._lift_hotwords(info, {w for p in space.phrases for w in p})
        space._scores = None  # asked only while loading: not kept for the search (73 k floats a space)
        return space

    # -- the LM's view of the words -------------------------------------------------------------

    def _unigrams(self) -> list[float]:
        """Every word index's log10 p(word) under the LM, scored once for all who ask."""
        if self._scores is None:
            self._scores = _unigram_scores(self.kenlm, self.words)
        return self._scores

    def _unknown(self, info: LMInfo, indices) -> set[int]:
        """The word indices the LM does not know (an ARPA file lists its words: none scored)."""
        return _unknown_indices(info, self.words, self._unigrams() if info.binary else None, indices)

    def _check_lexicon_words(self, info: LMInfo, lexicon, lexicon_words: list[str]) -> None:
        """Say how many of the lexicon file's words the LM lacks (each scores as its <unk>); refuse
        a binary LM over the model's tokens (an ARPA one is refused before the lexicon is read)."""
        unknown = sorted(self._unknown(info, [self.words.get_index(w) for w in lexicon_words]))
        if len(unknown) / len(lexicon_words) > UNKNOWN_WORDS_NOTED:
            if info.binary and not self._unknown(info, [self.words.get_index(WORD_SEP)]):  # no word LM has |
                raise _token_lm_refusal(info.path, lexicon)
            shown = ", ".join(repr(self.words.get_entry(i)) for i in unknown[:5])
            self.notes.append(f"{lexicon}: {len(unknown)} of {len(lexicon_words)} lexicon words are not in "
                              f"{info.path} (e.g. {shown}): the search scores them as its <unk>")

    def _lift_hotwords(self, info: LMInfo, indices: set[int]) -> None:
        """A hotword the LM does not know scores as its <unk>, which may be hopeless (-99 in an
        imported Sphinx LM: no bonus makes up for it). Floor it at the lexicon's rarest word the
        LM knows when that is likelier: the hotword can then win with its bonus."""
        missing = self._unknown(info, indices)
        if not missing:
            return
        unk_index = self.words.get_index(UNK)
        scores = self._unigrams()  # one pass over the vocabulary serves both questions
        unk = scores[unk_index]
        known = {self.words.get_index(w) for w in self.lexicon} - {unk_index}
        floor = min((scores[i] for i in known - self._unknown(info, known)), default=unk)
        if floor <= unk:
            return
        self.lifts = {i: floor - unk for i in missing}
        shown = ", ".join(sorted(self.words.get_entry(i) for i in missing))
        self.notes.append(f"hotword word(s) not in {info.path}: {shown}; scored as its rarest lexicon word "
                          f"(log10 p {floor:.2f}) instead of its <unk> ({unk:.2f})")

    # -- the trie and the phrases ---------------------------------------------------------------

    def trie(self, lm) -> Trie:
        """The lexicon as flashlight's trie, each word's unigram score under ``lm`` smeared along
        its spelling (as torchaudio's ctc_decoder builds it). Built once per LM of this space:
        73 k words take seconds, and tuning and rescoring make a search per setting."""
        if lm is not self.kenlm and lm is not self.zero_lm:  # a hotword wrapper: its own
            return self._build_trie(lm)
        if id(lm) not in self._tries:  # both LMs live as long as this space, so their ids stay theirs
            self._tries[id(lm)] = self._build_trie(lm)
        return self._tries[id(lm)]

    def _build_trie(self, lm) -> Trie:
        ids = {self.tokens.get_entry(i): i for i in range(self.tokens.index_size())}
        trie = Trie(self.tokens.index_size(), self.tokens.get_index(WORD_SEP))
        start = lm.start(False)
        for word, spellings in self.lexicon.items():
            index = self.words.get_index(word)
            # a hotword phrase's later words: their bonus counted on while they are spelled
            score = lm.lookahead(start, index) if isinstance(lm, HotwordLM) else lm.score(start, index)[1]
            for spelling in spellings:
                trie.insert([ids[t] for t in spelling], index, score)
        trie.smear(SmearingMode.MAX)
        return trie

    def _add_phrases(self, phrases: list[str], tokenizer: Tokenizer, written: dict[str, str]) -> None:
        """Each phrase as the search meets it: word indices (``written``: a word's form in the
        lexicon, where the LM writes it otherwise), or, lexicon-free, its tokens."""
        for phrase in phrases:
            unknown = sorted(tokenizer.unknown_chars(phrase))
            if unknown:
                what = (f"words without a pronunciation: {' '.join(unknown)}" if tokenizer.kind == "phone"
                        else f"characters outside the tokenizer {''.join(unknown)!r}")
                self.notes.append(f"hotword {phrase!r} left out: {what}")
                continue
            if self.words is not None:  # the search asks the LM once per word
                self.phrases.append(tuple(self.words.get_index(written.get(w, w)) for w in phrase.split()))
                self.shares.append(tuple(1.0 for _ in phrase.split()))
            else:  # once per token: the phrase is |w o r d|, the bonus spread over its tokens
                units, shares = [tokenizer.word_sep_id], [0.0]
                for word in phrase.split():
                    ids = tokenizer.encode(word)
                    units += ids + [tokenizer.word_sep_id]
                    shares += [1.0 / len(ids)] * len(ids) + [0.0]
                self.phrases.append(tuple(units))
                self.shares.append(tuple(shares))


_SHARED: "weakref.WeakValueDictionary[tuple, SearchSpace]" = weakref.WeakValueDictionary()


def _source(lm, lexicon) -> str:
    """The LM and lexicon files as a search describes them."""
    return ", ".join(f"{k} {v}" for k, v in (("lm", lm), ("lexicon", lexicon)) if v)


def _share_key(tokenizer: Tokenizer, lm, lexicon, phrases: list[str]) -> tuple | None:
    """What makes two spaces the same: the tokens, the LM file and the lexicon file's content.
    Only for a lexicon file without hotwords (else the tokenizer's own spellings enter)."""
    if phrases or not lexicon or str(lexicon).lower() == "none" or not Path(lexicon).is_file() \
            or (lm and not Path(lm).is_file()):  # (a missing file: loading says so)
        return None
    digest = hashlib.sha1(Path(lexicon).read_bytes()).hexdigest()
    return tuple(tokenizer.tokens), file_stamp(lm) if lm else None, digest


def file_stamp(path: str | Path) -> tuple[str, int, int]:
    """A file as make tells files apart: where it is, its size and its time (an LM is too large to hash)."""
    st = Path(path).stat()
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns
