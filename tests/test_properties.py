"""Properties the core functions promise, checked on seeded random inputs (no hypothesis package:
plain loops over fixed seeds, so a failure names its seed and reruns the same)."""

import itertools
import math
import random

import jiwer
import numpy as np
import pytest
import torch

from asr.alignment import align_words, extend_word_ends
from asr.batching import BucketBatchSampler, padded_batches
from asr.decoding import GreedyDecoder, Hypothesis
from asr.evaluate import join_pieces
from asr.metrics import char_errors, word_errors
from asr.rescoring import Candidates, RescoringOptions
from asr.rescoring_grid import PieceTable
from asr.results import Result, Segment, Word, merge_results, split_at_pauses
from asr.rover import _same, combine, combine_results
from asr.segmenter import Segmenter, SegmenterOptions, array_blocks, frame_energy
from asr.text import CharTokenizer, UnknownCharacterError, normalize_text
from asr.tokenizers import SubwordTokenizer

# --- text and tokenizers -----------------------------------------------------------------------

# Scripts, case pairs, compatibility forms, invisible format characters, punctuation and numbers
# (capitals followed by combining marks: a test of their own, below)
POOLS = ["abcdefghijklmnopqrstuvwxyz", "ABCdef'-.,!?_/\\|", "àéîõüßçñ", "абвгдеЖ", "αβγδεΣς", "一二三四",
         "ก่ข้ค", "١٢٣0123456789", "ǅǈĳﬁŉẞ", "\u00ad\u200b\u200c\u00a0\u2009", "①²½Ⅻ",
         "1,000 3.5 $5"]


def random_text(rng: random.Random, alphabet: str | None = None) -> str:
    chars = alphabet if alphabet is not None else "".join(rng.sample(POOLS, rng.randint(1, 4)))
    return "".join(rng.choice(chars + "   ") for _ in range(rng.randint(0, 40)))


def test_normalizing_random_text_twice_gives_what_normalizing_once_gave():
    for seed in range(2000):
        once = normalize_text(random_text(random.Random(seed)))
        assert normalize_text(once) == once, seed


def test_a_capital_with_a_combining_accent_normalizes_as_its_precomposed_small_letter_does():
    # "Ϊ́" lower-cased after NFKC is ϊ + U+0301, which NFKC composes to ΐ only on a second pass: the
    # same word in a reference and a hypothesis scored as an error, and normalizing twice changed it
    assert normalize_text("\u03aa\u0301") == normalize_text("\u0390") == "\u0390"
    assert normalize_text(normalize_text("\u0130\u0e48")) == normalize_text("\u0130\u0e48")  # İ + a Thai mark
    assert normalize_text("cafe\u00ad\u0301") == normalize_text("caf\u00e9") == "caf\u00e9"  # a soft hyphen dropped


def test_the_character_tokenizer_decodes_what_it_encodes_for_any_normalized_text():
    for seed in range(1000):
        rng = random.Random(seed)
        texts = [random_text(rng) for _ in range(rng.randint(1, 4))]
        tokenizer = CharTokenizer.build(texts)
        for text in map(normalize_text, texts):
            ids = tokenizer.encode(text)
            assert tokenizer.blank_id not in ids and tokenizer.decode(ids) == text, seed


def test_subword_tokenizers_decode_what_they_encode_with_or_without_bpe_dropout():
    for seed in range(40):
        rng = random.Random(seed)
        texts = [random_text(rng) for _ in range(rng.randint(2, 20))]
        alphabet = "".join(sorted({c for t in texts for c in normalize_text(t).replace(" ", "")}))
        if not alphabet:
            continue
        tokenizer = SubwordTokenizer.build(texts, vocab_size=len(alphabet) + rng.randint(1, 40))
        # the training text and unseen words of its characters
        for text in [normalize_text(t) for t in texts] + [normalize_text(random_text(rng, alphabet)) for _ in range(5)]:
            ids = tokenizer.encode(text)
            assert tokenizer.decode(ids) == text, seed
            assert tokenizer.decode(tokenizer.encode(text, dropout=0.5, rng=random.Random(seed))) == text, seed
            # BPE-dropout that drops nothing is sentencepiece's own segmentation
            assert tokenizer.encode(text, dropout=1e-300, rng=random.Random(seed)) == ids, seed


def test_subword_merges_replayed_without_dropout_segment_words_as_sentencepiece_does():
    for seed in range(20):
        rng = random.Random(seed)
        syllables = ["".join(rng.choices("abcdefghij'", k=rng.randint(1, 3))) for _ in range(15)]
        words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(60)]
        texts = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(80)]
        alphabet = {c for t in texts for c in normalize_text(t).replace(" ", "")}
        tokenizer = SubwordTokenizer.build(texts, vocab_size=len(alphabet) + rng.randint(20, 150))
        for text in map(normalize_text, texts[:20]):
            assert tokenizer.encode(text, dropout=1e-300, rng=random.Random(0)) == tokenizer.encode(text), seed


def test_characters_outside_a_tokenizers_vocabulary_raise_an_error_that_names_them():
    char = CharTokenizer.build(["abc"])
    subword = SubwordTokenizer.build(["abc cab bca"], vocab_size=6)
    for tokenizer in (char, subword):
        with pytest.raises(UnknownCharacterError, match="'x'") as error:
            tokenizer.encode("ab xa")
        assert error.value.unknown == {"x"}


# --- decoding and alignment --------------------------------------------------------------------

TOKENIZER = CharTokenizer.build(["abcdefgh"])


def collapsed(path: list[int]) -> tuple[list[int], list[int]]:
    """CTC's collapse, written out: (tokens, the frame each was emitted at)."""
    tokens, frames = [], []
    for t, (before, token) in enumerate(zip([None, *path], path)):
        if token != before and token != TOKENIZER.blank_id:
            tokens.append(token)
            frames.append(t)
    return tokens, frames


def test_greedy_decoding_is_the_argmax_path_with_repeats_merged_and_blanks_dropped():
    decoder = GreedyDecoder(TOKENIZER)
    for seed in range(300):
        rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
        batch, frames = rng.randint(1, 3), rng.randint(1, 30)
        log_probs = (torch.randn(batch, frames, len(TOKENIZER), generator=generator) * 3).log_softmax(-1)
        lengths = torch.tensor([rng.randint(0, frames) for _ in range(batch)])
        for b, hyp in enumerate(decoder.decode(log_probs, lengths)):
            path = log_probs[b, : int(lengths[b])].argmax(-1).tolist()
            tokens, emitted = collapsed(path)
            assert (list(hyp.tokens), list(hyp.frames), hyp.text) == (tokens, emitted, TOKENIZER.decode(tokens)), seed
            assert hyp.score == pytest.approx(float(log_probs[b, : len(path)].max(-1).values.sum()), abs=1e-4)


def spelling_posteriors(rng: random.Random, generator: torch.Generator, targets: list[int]) -> torch.Tensor:
    """(T, V) log-probs whose peaks spell ``targets`` (blanks and repeats at random), under noise."""
    path = []
    for k, t in enumerate(targets):
        path += [TOKENIZER.blank_id] * (k > 0 and targets[k - 1] == t) + [t]  # a blank between repeats
    for _ in range(rng.randint(0, 20)):
        i = rng.randint(0, len(path))
        path.insert(i, rng.choice([TOKENIZER.blank_id, path[i - 1] if i else TOKENIZER.blank_id]))
    scores = torch.randn(len(path), len(TOKENIZER), generator=generator) * rng.choice([0.1, 1.0, 3.0])
    scores[torch.arange(len(path)), torch.tensor(path)] += rng.choice([0.0, 2.0, 8.0])
    return scores.log_softmax(-1)


def test_aligned_words_are_the_texts_words_once_each_in_order_and_inside_the_utterance():
    for seed in range(500):
        rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
        words = ["".join(rng.choices("abcdefgh"[: rng.randint(1, 8)], k=rng.randint(1, 5)))
                 for _ in range(rng.randint(1, 5))]
        text = " ".join(words)
        log_probs = spelling_posteriors(rng, generator, TOKENIZER.encode(text))
        tokens = tuple(TOKENIZER.encode(text)) if rng.random() < 0.5 else ()  # the decoder's own, or none
        aligned, confidence = align_words(log_probs, Hypothesis(text, tokens, (), 0.0), TOKENIZER)
        assert [w.word for w in aligned] == words, seed
        ends = [0] + [w.end for w in aligned]
        assert all(end <= w.start < w.end for end, w in zip(ends, aligned)), seed
        assert ends[-1] <= log_probs.shape[0] and 0 <= confidence <= 1 + 1e-6, seed
        # a word's end moved on through its sound never reaches the next word nor leaves the utterance
        energy = [rng.random() * rng.choice([0.0, 1.0, 1e-5]) for _ in range(log_probs.shape[0])]
        moved = extend_word_ends(aligned, energy, rng.randint(0, 5), 40.0, rng.choice([0.0, 1e-6]))
        assert [w.start for w in moved] == [w.start for w in aligned], seed
        assert all(w.end >= a.end for w, a in zip(moved, aligned)), seed
        assert all(w.end <= n.start for w, n in zip(moved, moved[1:])) and moved[-1].end <= len(energy), seed


# --- metrics, ROVER, rescoring grid ------------------------------------------------------------

def random_words(rng: random.Random, vocabulary=("a", "b", "c", "ab", "ca"), most: int = 6) -> str:
    return " ".join(rng.choices(vocabulary, k=rng.randint(0, most)))


def test_error_counts_are_jiwers_summed_over_pairs_with_an_empty_references_words_as_insertions():
    for seed in range(500):
        rng = random.Random(seed)
        refs = [random_words(rng) for _ in range(rng.randint(1, 5))]
        hyps = [random_words(rng).replace(" ", rng.choice([" ", "  "])) for _ in refs]
        for errors, process, units in ((word_errors, jiwer.process_words, lambda h: len(h.split())),
                                       (char_errors, jiwer.process_characters, lambda h: len(h.strip()))):
            expected = [0, 0, 0, 0]
            for ref, hyp in zip(refs, hyps):
                if not ref.strip():
                    expected[2] += units(hyp)
                    continue
                out = process(ref, hyp)
                expected = [a + b for a, b in zip(expected, (out.substitutions, out.deletions, out.insertions,
                                                             out.hits + out.substitutions + out.deletions))]
            got = errors(refs, hyps)
            assert [got.substitutions, got.deletions, got.insertions, got.reference_length] == expected, seed


def test_rover_of_copies_of_one_hypothesis_is_that_hypothesis_whatever_the_weights():
    vocabulary = ("a", "b", "The", "the", "x'y", "--")
    for seed in range(500):
        rng = random.Random(seed)
        hyp, copies = random_words(rng, vocabulary, 8), rng.randint(1, 5)
        weights = [rng.uniform(0.1, 2) for _ in range(copies)] if rng.random() < 0.5 else None
        assert combine([hyp] * copies, weights) == " ".join(hyp.split()), seed
        t, words = 0.0, []
        for w in hyp.split():
            t += rng.choice([0.0, 0.1, 0.7, 2.0])
            words.append(Word(w, round(t, 3), round(t + 0.2, 3), rng.random()))
            t += 0.2
        timed = Result(" ".join(hyp.split()), t + 1, split_at_pauses(words, " ".join(hyp.split()), 0.6), words, 0.5)
        assert combine_results([timed] * copies, weights).words == words, seed


def test_a_system_weighted_above_all_the_others_together_wins_every_slot():
    for seed in range(500):
        rng = random.Random(seed)
        hyps = [random_words(rng, ("a", "b", "c", "A", "d")) for _ in range(rng.randint(2, 5))]
        weights = [rng.uniform(0.1, 1) for _ in hyps]
        top = rng.randrange(len(hyps))
        weights[top] = sum(weights) + 0.1
        assert [_same(w) for w in combine(hyps, weights).split()] == [_same(w) for w in hyps[top].split()], seed


def test_combined_word_times_never_go_back_and_stay_inside_the_file():
    for seed in range(500):
        rng, results = random.Random(seed), []
        for _ in range(rng.randint(1, 4)):
            t, words = rng.uniform(0, 1), []
            for _ in range(rng.randint(0, 8)):
                t += rng.choice([0.0, 0.05, 0.4, 1.5])
                length = rng.choice([0.04, 0.2, 0.5])
                if t + length > 10.0:
                    break
                words.append(Word(rng.choice("abcd"), round(t, 3), round(t + length, 3), rng.random()))
                t += length
            text = " ".join(w.word for w in words)
            results.append(Result(text, 10.0, split_at_pauses(words, text, 0.6), words, 0.5 if words else None))
        combined = combine_results(results)
        assert combined.text == " ".join(w.word for w in combined.words), seed
        times = [x for w in combined.words for x in (w.start, w.end)]
        assert times == sorted(times) and all(0 <= x <= 10.0 for x in times), seed


def test_a_piece_tables_wer_and_oracle_are_those_of_choosing_and_scoring_each_utterance_directly():
    # candidates with case, punctuation and texts that normalize to nothing; coarse scores, so ties
    vocabulary = ("a", "b", "c", "A", "B.", "it's", "--")
    for seed in range(60):
        rng = random.Random(seed)
        systems, candidates, refs = rng.randint(1, 3), [], []
        for _ in range(rng.randint(1, 8)):
            for piece in range(rng.choice([1, 1, 2, 3])):
                texts = [random_words(rng, vocabulary, 4) for _ in range(rng.choice([0, 1, 2, 4]))]
                ctc = [[-math.inf if rng.random() < 0.2 else -float(rng.randint(0, 3)) for _ in texts]
                       for _ in range(systems)]
                candidates.append(Candidates(texts, ctc, [-float(rng.randint(0, 2)) for _ in texts]))
                refs.append(normalize_text(random_words(rng, vocabulary, 5)) if piece == 0 else None)
        table = PieceTable(candidates, refs)
        for _ in range(10):
            rest = (rng.choice([0.0, 0.5, 1.0, 0.1 + 0.2]) for _ in range(systems - 1))
            options = RescoringOptions(weights=(1.0, *rest), lm_weight=rng.choice([0.0, 1.0, 2.5]),
                                       word_score=rng.choice([-1.0, 0.0, 2.0]))
            hyps = [normalize_text(c.texts[c.best(options)]) if c.texts else "" for c in candidates]
            expected = word_errors(*join_pieces(refs, hyps)).rate
            assert table.word_error_rate(options.weights, options.lm_weight, options.word_score) == expected, seed
        # the oracle: every combination of one candidate per piece of an utterance tried
        utterances = []  # (reference, each piece's texts)
        for ref, c in zip(refs, candidates):
            if ref is None:
                utterances[-1][1].append(c.texts or [""])
            else:
                utterances.append((ref, [c.texts or [""]]))
        errors = sum(min(word_errors([ref], [" ".join(normalize_text(t) for t in pick)]).errors
                         for pick in itertools.product(*texts)) for ref, texts in utterances)
        words = sum(len(ref.split()) for ref, _ in utterances)
        assert table.oracle_rate() == pytest.approx(errors / words if words else float(errors > 0)), seed


# --- results -----------------------------------------------------------------------------------

def test_pieces_stitched_onto_the_files_clock_keep_their_times_in_order_and_inside_the_file():
    rate = 16000
    for seed in range(1000):
        rng, position, pieces = random.Random(seed), 0, []
        for _ in range(rng.randint(0, 6)):
            position += rng.choice([0, rng.randint(1, 3 * rate)])  # abutting (a cut in speech) or after a pause
            samples = rng.randint(1, 5 * rate)
            duration, t, words = samples / rate, 0.0, []
            for _ in range(rng.randint(0, 5)):  # times on the piece's clock, rounded and held to its end
                t += rng.choice([0.0, 0.04, 0.7])
                end = t + rng.choice([0.04, 0.3])
                if t >= duration:
                    break
                words.append(Word(rng.choice("abc"), round(t, 3), round(min(end, duration), 3), rng.random()))
                t = end
            text = " ".join(w.word for w in words) if rng.random() < 0.8 else "untimed words"
            words = words if text != "untimed words" else []
            pieces.append((position / rate, Result(text, duration, [Segment(0.0, round(duration, 3), text)], words)))
            position += samples
        length = (position + rng.randint(0, rate)) / rate
        rng.shuffle(pieces)
        merged = merge_results(pieces, length)
        for timed in (merged.words, merged.segments):
            times = [x for w in timed for x in (w.start, w.end)]
            assert times == sorted(times) and all(0 <= x <= round(length, 3) for x in times), seed
        assert " ".join(s.text for s in merged.segments) == merged.text, seed


# --- segmenter ---------------------------------------------------------------------------------

RATE = 8000


def random_wave(rng: np.random.Generator) -> np.ndarray:
    """Stretches of silence, tones, noise, near-silence and full-scale int16 values, of random
    lengths (a sample to seconds), over a DC offset a third of the time."""
    parts = []
    for _ in range(rng.integers(1, 25)):
        kind = rng.integers(5)
        n = int(rng.integers(1, 200) if rng.random() < 0.3 else rng.integers(200, 3 * RATE))
        if kind == 0:
            part = np.zeros(n)
        elif kind == 1:
            part = rng.uniform(0.01, 0.9) * np.sin(2 * np.pi * rng.uniform(50, 3000) * np.arange(n) / RATE)
        elif kind == 2:
            part = rng.uniform(0.01, 0.5) * rng.standard_normal(n)
        elif kind == 3:
            part = 1e-3 * rng.standard_normal(n)
        else:
            part = rng.choice([-32768, 32767], n) / 32768
        parts.append(part)
    dc = rng.uniform(-0.3, 0.3) if rng.random() < 0.3 else 0.0
    return np.clip(np.concatenate(parts) + dc, -1, 1).astype(np.float32)


def random_segmenter(rng: np.random.Generator) -> Segmenter:
    options = SegmenterOptions(
        max_seconds=float(rng.choice([0.5, 2.0, 3.0, 5.0])), min_seconds=float(rng.choice([0, 0.5, 1.0])),
        pause_seconds=float(rng.choice([0, 0.2, 0.5])), trim_after_seconds=float(rng.choice([0, 0.3, 1.0])),
        trim_margin_seconds=float(rng.choice([0, 0.1, 0.5])), pause_margin_seconds=float(rng.choice([0, 0.1, 0.2])))
    return Segmenter(RATE, options, align=int(rng.choice([1, 80, 320])))


def test_segments_are_the_files_own_samples_in_order_without_overlap_each_at_most_max_seconds():
    for seed in range(150):
        rng = np.random.default_rng(seed)
        wave, segmenter = random_wave(rng), random_segmenter(rng)
        segments = list(segmenter.segments(array_blocks(wave, int(rng.integers(1, 3 * RATE)))))
        end = 0
        for s in segments:
            start, n = int(round(s.start * RATE)), s.samples.numel()
            assert end <= start and start + n <= wave.size, seed
            assert 0 < n <= int(segmenter.options.max_seconds * RATE), seed
            assert np.array_equal(s.samples.numpy(), wave[start: start + n]), seed
            end = start + n
        # every sample of the file is stood for once (for progress), skipped pause middles included
        assert sum(s.covers for s in segments) == pytest.approx(wave.size / RATE), seed


def test_segments_are_the_same_whatever_blocks_the_audio_comes_in():
    for seed in range(100):
        rng = np.random.default_rng(seed)
        wave, segmenter = random_wave(rng), random_segmenter(rng)
        whole = [(s.start, s.samples.numel(), s.silent, s.covers) for s in segmenter.segments([wave])]
        for block in (int(rng.integers(50, 400)), int(rng.integers(400, 3 * RATE))):
            blocks = [(s.start, s.samples.numel(), s.silent, s.covers)
                      for s in segmenter.segments(array_blocks(wave, block))]
            assert blocks == whole, (seed, block)


def test_edge_trimming_drops_no_frame_within_quiet_db_of_the_loudest():
    # judged by whole energy frames, as the pause rule is (a sound inside the last partial frame
    # alone, under 25 ms, is no word)
    for seed in range(300):
        rng = np.random.default_rng(seed)
        wave = random_wave(rng)
        options = SegmenterOptions(trim_after_seconds=float(rng.choice([0.1, 0.3, 1.0])),
                                   trim_margin_seconds=float(rng.choice([0, 0.05, 0.5])))
        segmenter = Segmenter(RATE, options, align=int(rng.choice([1, 80, 320])))
        lo, hi = segmenter.speech_span(wave)
        frame = int(options.frame_seconds * RATE)
        energy = frame_energy(wave, frame)
        if not energy.size or not energy.max() > 0:  # no frame, or no sound in any: nothing to judge by
            assert (lo, hi) == (0, wave.size), seed
            continue
        assert lo % segmenter.align == 0 and 0 <= lo < hi <= wave.size, seed
        loud = np.flatnonzero(energy >= energy.max() * 10 ** (-options.quiet_db / 10))
        assert lo <= loud[0] * frame and (loud[-1] + 1) * frame <= hi, seed


# --- batching ----------------------------------------------------------------------------------

def random_sampler(rng: random.Random, **overrides) -> BucketBatchSampler:
    durations = [rng.choice([rng.uniform(0.1, 20), rng.uniform(0.1, 2), 30.0, 5.0])
                 for _ in range(rng.randint(0, 40))]
    options = dict(batch_seconds=rng.choice([1.0, 10.0, 30.0, 60.0]), max_batch_size=rng.randint(1, 8),
                   shuffle=rng.random() < 0.8, sortagrad=rng.random() < 0.5, seed=rng.randint(0, 99),
                   speed_factors=rng.choice([(1.0,), (0.9, 1.0, 1.1)]))
    return BucketBatchSampler(durations, **{**options, **overrides})


def test_every_epoch_holds_each_utterance_once_in_batches_within_their_padded_length():
    for seed in range(300):
        sampler = random_sampler(random.Random(seed))
        for epoch in range(3):
            batches = sampler.global_batches(epoch)
            assert sorted(i for batch in batches for i, _ in batch) == list(range(len(sampler.durations))), seed
            for batch in batches:
                lengths = [sampler.durations[i] / speed for i, speed in batch]
                assert 0 < len(batch) <= sampler.max_batch_size, seed
                # (one utterance alone may be longer than a batch)
                assert len(batch) == 1 or max(lengths) * len(batch) <= sampler.batch_seconds, seed


def test_sortagrads_first_epoch_runs_shortest_first():
    for seed in range(300):
        sampler = random_sampler(random.Random(seed), sortagrad=True)
        lengths = [sampler.durations[i] / speed for batch in sampler.global_batches(0) for i, speed in batch]
        assert lengths == sorted(lengths), seed


def test_an_epoch_is_the_same_for_the_same_seed_and_resumes_with_the_batches_it_had_left():
    for seed in range(300):
        rng = random.Random(seed)
        sampler = random_sampler(rng)
        again = BucketBatchSampler(list(sampler.durations), sampler.batch_seconds, sampler.max_batch_size,
                                   sampler.shuffle, sampler.sortagrad, sampler.seed, sampler.speed_factors)
        for epoch in range(3):
            batches = sampler.global_batches(epoch)
            assert again.global_batches(epoch) == batches, seed
            done = rng.randint(0, len(batches))
            again.set_epoch(epoch, skip=done)
            assert list(again) == batches[done:] and len(again) == len(batches) - done, seed


def test_padded_batches_keep_groups_whole_and_in_order_within_the_budget():
    for seed in range(500):
        rng = random.Random(seed)
        groups = [[rng.randint(1, 1000) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(0, 20))]
        budget = rng.choice([500, 1000, 3000, 10000])
        batches = list(padded_batches(iter(groups), lambda g: g, budget))
        assert [g for batch in batches for g in batch] == groups, seed
        for batch in batches:
            sizes = [n for group in batch for n in group]
            assert len(batch) == 1 or len(sizes) * max(sizes) <= budget, seed
