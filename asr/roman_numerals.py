"""Roman numerals spelled as the English synthesis voices read them, for ``asr synthesize``
(asr.tts): "Chapter V" -> "Chapter five", "Henry VIII" -> "Henry the eighth". The word before a
run of capitals decides whether it is a numeral at all ("Plan C", "Malcolm X", the pronoun I)."""

from __future__ import annotations

import re

# Roman numerals: flite reads "Chapter V" as "chapter five" and "Henry VIII" as "henry the eighth",
# espeak-ng as "vee" and "roman eight". Where the word before makes a run of capitals a numeral, the
# sentence is written as flite reads it, for every English voice; elsewhere (the pronoun I, "Plan C",
# "Malcolm X") it is left as written. Numbered things take the cardinal, rulers the ordinal.
_NUMBERED = {"chapter", "part", "volume", "book", "act", "scene", "war", "section", "article", "canto", "psalm",
             "episode", "stage", "phase", "type", "class", "grade", "level", "series"}  # not "mark": "Mark I would"
# after these flite reads "I" as "one" whatever it means ("the book I read"); after the others, "ay"
_I_READ_AS_ONE = {"chapter", "part", "volume", "book", "act", "scene", "war", "section"}
_RULERS = {"king", "queen", "pope", "emperor", "empress", "tsar", "czar", "henry", "louis", "george", "edward",
           "william", "charles", "james", "richard", "elizabeth", "mary", "john", "philip", "frederick", "peter",
           "catherine", "nicholas", "alexander", "pius", "leo", "gregory", "benedict", "innocent", "clement", "paul",
           "ferdinand", "francis", "alfonso", "victor", "ptolemy", "ramesses", "ivan"}
# capitalized at a sentence's start, not names: "The MIX"
_NOT_NAMES = {"the", "a", "an", "and", "or", "but", "of", "in", "on", "at", "to", "by", "for", "with", "from", "as",
              "if", "when", "then", "so", "this", "that", "these", "those", "it", "he", "she", "we", "they", "you",
              "his", "her", "its", "our", "their", "my", "your"}
# after a sentence's first word and I, these make I a numeral ("Part I of"); a verb makes it the pronoun
_AFTER_NUMERAL_I = {"of", "and", "or", "is", "ends", "begins", "opens", "closes"}
_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_WORD_AND_CAPITALS = re.compile(r"\b([A-Za-z]+)(\s+)([IVXLCDM]+)\b(?=['’]s\b|[^\w'’]|$)")  # "Henry V's", not "I'm"
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[c] for c in numeral]
    return sum(-v if v < after else v for v, after in zip(values, values[1:] + [0]))


def number_words(n: int, ordinal: bool = False) -> str:
    """1..3999 in words, as a voice reads them: 42 -> "forty two", ordinal -> "forty second"."""
    words = []
    for unit, name in ((1000, "thousand"), (100, "hundred")):
        if n >= unit:
            words += [_ONES[n // unit], name]
            n %= unit
    if n >= 20:
        words += [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    elif n:
        words.append(_ONES[n])
    if ordinal:
        last = words[-1]
        words[-1] = _ORDINALS.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join(words)


def _numeral_reading(text: str, m: re.Match) -> str | None:
    """What the capitals of match ``m`` (a word, then capitals) are read as, when the word makes
    them a roman numeral: "five", "the eighth"; None when they are not one."""
    word, numeral = m.group(1), m.group(3)
    if not _ROMAN.fullmatch(numeral) or (len(numeral) == 1 and numeral not in "IVX"):  # "Plan C", "Vitamin D"
        return None
    value, name = _roman_value(numeral), word.lower()
    if name in _NUMBERED:
        if numeral == "I":  # "in this chapter I explain", "Part I agree": the pronoun
            first = not text[:m.start()].strip() or re.search(r"[.!?][\"'”’)]*\s*$", text[:m.start()])
            after = re.match(r"\s+([a-z]+)", text[m.end():])
            if not word[0].isupper() or (first and after and after.group(1) not in _AFTER_NUMERAL_I):
                return None
        return number_words(value)
    if numeral == "I":  # "Henry I think": left as written (and refused: flite reads "the first")
        return None
    # after any other name only a regnal number (I, V, X): "Washington DC", "Summer MIX" are acronyms
    if name in _RULERS or (len(numeral) > 1 and set(numeral) <= set("IVX") and word.istitle()
                           and name not in _NOT_NAMES):
        return "the " + number_words(value, ordinal=True)
    return None


def expand_roman_numerals(text: str) -> str:
    """``text`` with its roman numerals written as words where the word before makes them
    numerals: "Chapter V" -> "Chapter five", "Henry VIII" -> "Henry the eighth" (English)."""
    def spell(m: re.Match) -> str:
        reading = _numeral_reading(text, m)
        return m.group(0) if reading is None else f"{m.group(1)}{m.group(2)}{reading}"
    return _WORD_AND_CAPITALS.sub(spell, text)


def has_roman_numerals(text: str) -> bool:
    """Numerals ``expand_roman_numerals`` would spell, or I after a ruler's name or a numbered word
    however it is meant (flite reads "Henry I think" as "the first", "the book I read" as "one")."""
    return any(_numeral_reading(text, m) is not None
               or (m.group(3) == "I" and m.group(1).lower() in _RULERS | _I_READ_AS_ONE)
               for m in _WORD_AND_CAPITALS.finditer(text))
