"""Properties the frontend, the model, the hotword matcher, the reports and the bootstrap promise,
checked on seeded random inputs (plain loops over fixed seeds, as tests/test_properties.py: a
failure names its seed and reruns the same)."""

import math
import random
from dataclasses import dataclass

import jiwer
import pytest
import torch

from asr.config import AugmentConfig, FeatureConfig, ModelConfig
from asr.features import Frontend, SpecAugment, lengths_to_mask
from asr.hotwords import PhraseMatcher
from asr.metrics import paired_bootstrap
from asr.model import AcousticModel, ConvSubsampling, FrameStacking, step_centre
from asr.report import Column, build_report
from asr.report_text import display_width, sclite_lines
from asr.train_checks import output_frames


def random_batch(seed: int, longest: int, hop: int = 160):
    """Waves of random lengths (some under a hop, some under half a window), padded with NaN:
    samples past a length may hold anything."""
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    lengths = [rng.choice([rng.randint(1, hop), rng.randint(1, longest)]) for _ in range(rng.randint(2, 4))]
    waves = torch.randn(len(lengths), max(lengths) + rng.randint(0, 2 * hop), generator=g) * 0.3
    for i, n in enumerate(lengths):
        waves[i, n:] = math.nan
    return waves, torch.tensor(lengths)


# --- features ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fbank", "mfcc", "spectrogram"])
@pytest.mark.parametrize("normalize", ["global", "utterance", "none"])
def test_each_utterance_gets_the_features_it_gets_alone_whatever_the_batch_pads_it_with(kind, normalize):
    frontend = Frontend(FeatureConfig(kind=kind, normalize=normalize, n_mels=40, n_mfcc=13)).eval()
    g = torch.Generator().manual_seed(1)
    dim = frontend.normalizer.mean.numel()
    frontend.normalizer.set_stats(torch.randn(dim, generator=g), torch.rand(dim, generator=g) + 0.5)
    for seed in range(8):
        waves, lengths = random_batch(seed, 3000)
        feats, frames = frontend(waves, lengths)
        assert frames.tolist() == frontend.extractor.output_lengths(lengths).tolist(), seed
        assert not feats[~lengths_to_mask(frames, feats.shape[1])].any(), seed  # padding frames are zero
        for i, n in enumerate(lengths.tolist()):
            alone, alone_frames = frontend(waves[i:i + 1, :n], lengths[i:i + 1])
            assert alone.shape[1] == alone_frames.item() == frames[i].item(), seed
            # utterance normalization of a few frames divides by a small spread: 1e-4 of unit variance
            torch.testing.assert_close(feats[i, :frames[i]], alone[0], atol=2e-4, rtol=1e-4, msg=f"seed {seed}")


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "spectrogram"])
def test_float64_samples_give_the_float32_features(kind):
    frontend = Frontend(FeatureConfig(kind=kind, normalize="utterance")).eval()
    for seed in range(4):
        waves, lengths = random_batch(seed, 3000)
        single, frames = frontend(waves, lengths)
        double, frames64 = frontend(waves.double(), lengths)
        assert double.dtype == torch.float32 and frames64.tolist() == frames.tolist()
        torch.testing.assert_close(double, single, msg=f"seed {seed}")


def test_specaugment_masks_only_inside_each_utterance_and_keeps_its_length():
    for seed in range(200):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        B, T, F = rng.randint(1, 5), rng.randint(1, 60), rng.randint(1, 40)
        lengths = torch.tensor([rng.randint(0, T) for _ in range(B)])
        cfg = AugmentConfig(freq_masks=rng.randint(0, 3), freq_mask_width=rng.randint(0, 50),
                            time_masks=rng.randint(1, 4), time_mask_fraction=rng.choice([0.05, 0.3, 1.0]))
        valid = lengths_to_mask(lengths, T)
        feats = (torch.rand(B, T, F) + 1) * valid[..., None]  # never 0 inside: a 0 is a mask
        masked = SpecAugment(cfg).train()(feats, lengths)
        assert not masked[~valid].any(), seed  # padding stays zero
        frame_masked = (masked == 0).all(-1) & (feats != 0).any(-1)  # a whole frame blanked: a time mask
        assert not (frame_masked & ~valid).any(), seed
    frontend = Frontend(FeatureConfig(), AugmentConfig(time_mask_fraction=1.0)).train()
    _, frames = frontend(torch.randn(2, 800), torch.tensor([800, 333]))
    assert frames.tolist() == [6, 3]  # augmentation leaves the lengths as the extractor gave them


# --- the model ---------------------------------------------------------------------------------

def tiny_model(cell="lstm", bidirectional=True, subsampling="conv", factor=4, norm="layer", **features):
    torch.manual_seed(0)
    model = ModelConfig(cell=cell, bidirectional=bidirectional, subsampling=subsampling, subsampling_factor=factor,
                        num_layers=2, hidden_size=8, conv_channels=3, dropout=0.0, norm=norm)
    return AcousticModel(FeatureConfig(n_mels=20, normalize="utterance", **features), model, vocab_size=5).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("subsampling,factor", [("conv", 4), ("conv", 1), ("stack", 3)])
def test_each_utterance_gets_its_own_log_probs_in_a_padded_batch(cell, bidirectional, subsampling, factor):
    model = tiny_model(cell, bidirectional, subsampling, factor, norm=random.Random(factor).choice(["layer", "batch"]))
    for seed in range(2):
        waves, lengths = random_batch(seed, 3000)
        with torch.no_grad():
            log_probs, frames = model(waves, lengths)
            assert log_probs.shape[1] >= frames.max()  # the batch may hold samples past its longest
            for i in range(len(lengths)):
                alone, alone_frames = model(waves[i:i + 1, :lengths[i]], lengths[i:i + 1])
                assert alone.shape[1] == alone_frames.item() == frames[i].item(), seed
                torch.testing.assert_close(log_probs[i, :frames[i]], alone[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("subsampling,factor", [("conv", f) for f in (1, 2, 4, 8)] + [("stack", f) for f in (1, 3, 4)])
@pytest.mark.parametrize("hop,n_fft", [(160, 400), (128, 128)])
def test_output_frames_are_the_feature_frames_divided_by_the_factor_rounded_up(subsampling, factor, hop, n_fft):
    model = tiny_model(subsampling=subsampling, factor=factor, hop_length=hop, n_fft=n_fft)
    rng = random.Random(factor)
    samples = [1, hop - 1, hop, hop + 1] + [rng.randint(1, 4000) for _ in range(6)]
    with torch.no_grad():
        _, frames = model(torch.randn(len(samples), max(samples)), torch.tensor(samples))
    features = [n // hop + 1 for n in samples]
    assert frames.tolist() == [-(-f // factor) for f in features]  # never more than the features hold
    assert output_frames(model, samples) == frames.tolist()  # train_checks' rule without the audio


@pytest.mark.parametrize("subsampling", [ConvSubsampling(10, 64, f, 32) for f in (1, 2, 4, 8)]
                         + [FrameStacking(10, 8, f) for f in (1, 3, 5)], ids=lambda s: f"{type(s).__name__}")
def test_an_output_step_reads_only_its_input_frames_centred_at_k_times_factor_plus_frame_centre(subsampling):
    # The basis of frame_shift and frame_centre: step k's window, measured by moving each input frame
    torch.manual_seed(0)
    factor = 2 ** len(subsampling.strides) if isinstance(subsampling, ConvSubsampling) and \
        subsampling.strides[0] == 2 else getattr(subsampling, "factor", 1)
    T = 40
    x = torch.randn(1, T, 10)
    with torch.no_grad():
        base, _ = subsampling(x, torch.tensor([T]))
        reads = {}
        for j in range(T):
            moved = x.clone()
            moved[0, j] += 10
            changed = (subsampling(moved, torch.tensor([T]))[0] - base).abs().amax(-1)[0] > 1e-6
            for k in changed.nonzero().flatten().tolist():
                reads.setdefault(k, []).append(j)
    assert sorted(reads) == list(range(base.shape[1]))
    for k, frames in reads.items():
        lo, hi = subsampling.input_frames(k)
        assert (min(frames), max(frames)) == (lo, min(hi, T - 1)), k
        lo, hi = subsampling.input_frames(k, clipped=False)
        assert (lo + hi) / 2 == k * factor + step_centre(subsampling)


def test_frame_shift_and_centre_follow_the_subsampling():
    for subsampling, factor in [("conv", 1), ("conv", 4), ("conv", 8), ("stack", 3)]:
        model = tiny_model(subsampling=subsampling, factor=factor)
        assert model.frame_shift == pytest.approx(0.01 * factor)
        assert model.frame_centre == pytest.approx(0.0 if subsampling == "conv" else 0.01 * (factor - 1) / 2)


# --- hotwords ----------------------------------------------------------------------------------

def credited(phrases: dict, stream: list[int]) -> float:
    """The naive matcher: each unit that a complete phrase covers earns its bonus in the first
    phrase that covers it (by where it ends, the longest first)."""
    earned = {}
    for end in range(1, len(stream) + 1):
        for phrase in sorted(phrases, key=len, reverse=True):
            start = end - len(phrase)
            if start >= 0 and tuple(stream[start:end]) == phrase:
                for j, bonus in enumerate(phrases[phrase]):
                    earned.setdefault(start + j, bonus)
    return sum(earned.values())


def pending(phrases: dict, stream: list[int], weight: dict) -> float:
    """The bonus a stream shows while it may still complete a phrase: its longest end that begins
    one, less the units already covered (which ``credited`` counts)."""
    prefixes = {p[:i] for p in phrases for i in range(1, len(p) + 1)}
    k = next(k for k in range(len(stream) + 1) if k == len(stream) or tuple(stream[k:]) in prefixes)
    covered = set()
    for phrase in phrases:
        for s in range(len(stream) - len(phrase) + 1):
            if tuple(stream[s:s + len(phrase)]) == phrase:
                covered.update(range(s, s + len(phrase)))
    return sum(weight[stream[i]] for i in range(k, len(stream)) if i not in covered)


def test_the_phrase_matcher_scores_each_word_stream_as_a_naive_search_does():
    # words: one bonus per word, repeated words, phrases inside others, overlapping ones
    for seed in range(1500):
        rng = random.Random(seed)
        V = rng.randint(1, 4)
        weight = {u: float(rng.randint(1, 3)) for u in range(1, V + 1)}
        phrases = {tuple(rng.randint(1, V) for _ in range(rng.randint(1, 4))): None for _ in range(rng.randint(1, 4))}
        phrases = {p: tuple(weight[u] for u in p) for p in phrases}
        matcher = PhraseMatcher(list(phrases), list(phrases.values()))
        stream = [rng.randint(1, V) for _ in range(rng.randint(0, 12))]
        state, total = matcher.initial, 0.0
        for i, unit in enumerate(stream):
            state, change = matcher.step(state, unit)
            total += change
            seen = stream[:i + 1]
            assert total == pytest.approx(credited(phrases, seen) + pending(phrases, seen, weight)), seed
        assert total + matcher.finish(state) == pytest.approx(credited(phrases, stream)), seed


def test_the_phrase_matcher_scores_each_token_stream_as_a_naive_search_does():
    # tokens: phrases are |w o r d|, each word's bonus spread over its tokens, and words of other
    # lengths share first tokens (new, news): each complete phrase still earns exactly its own
    sep = 0
    for seed in range(1500):
        rng = random.Random(seed)
        V = rng.randint(1, 4)
        words = [tuple(rng.randint(1, V) for _ in range(rng.randint(1, 3))) for _ in range(4)]
        phrases = {}
        for _ in range(rng.randint(1, 4)):
            units, shares = [sep], [0.0]
            for word in (rng.choice(words) for _ in range(rng.randint(1, 2))):
                units += [*word, sep]
                shares += [1 / len(word)] * len(word) + [0.0]
            phrases.setdefault(tuple(units), tuple(shares))
        matcher = PhraseMatcher(list(phrases), list(phrases.values()), boundary=sep)
        said = [rng.choice(words) if rng.random() < 0.8 else (rng.randint(1, V),) for _ in range(rng.randint(0, 4))]
        stream = [u for word in said for u in (*word, sep)][:-1]
        state, total = matcher.initial, 0.0
        for unit in stream:
            state, change = matcher.step(state, unit)
            total += change
        assert total + matcher.finish(state) == pytest.approx(credited(phrases, [sep, *stream, sep])), seed


# --- reports -----------------------------------------------------------------------------------

@dataclass
class Utt:
    id: str
    reference: str
    hypothesis: str
    speaker: str | None


# wide (CJK, fullwidth), combining marks, invisible format characters, words that upper-case longer
WORDS = ["a", "b", "cat", "ß", "straße", "café", "cafe\u0301", "一二", "東京", "ｱ", "Ａ", "ǆ", "ﬁ", "ﬃ", "İ", "ŉ",
         "x\u200by", "ǰ", "ΐ", "a\u0308\u0301", "ᾳ", "한국", "😀"]


def random_utterances(rng: random.Random) -> list[Utt]:
    says = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))  # noqa: E731
    return [Utt(str(k), says(), says(), rng.choice(["s1", "s2", "s3", None])) for k in range(rng.randint(1, 5))]


def test_report_word_counts_are_jiwers_and_speakers_sum_to_the_totals():
    for seed in range(1000):
        report = build_report(random_utterances(random.Random(seed)))
        for u in report.utterances:
            if u.reference.strip():
                out = jiwer.process_words(u.reference, u.hypothesis)
                assert (u.words.substitutions, u.words.deletions, u.words.insertions, u.words.reference_length) \
                    == (out.substitutions, out.deletions, out.insertions, out.hits + out.substitutions
                        + out.deletions), seed
            else:
                assert u.words.errors == u.words.insertions == len(u.hypothesis.split()), seed
        for unit in ("words", "chars"):
            totals = [getattr(getattr(r, unit), f) for _, r in report.speakers()
                      for f in ("substitutions", "deletions", "insertions", "reference_length")]
            whole = getattr(report, unit)
            assert [sum(totals[i::4]) for i in range(4)] == [whole.substitutions, whole.deletions,
                                                             whole.insertions, whole.reference_length], seed
        assert sum(len(r.utterances) for _, r in report.speakers()) == len(report.utterances)


def test_sclite_ref_and_hyp_columns_line_up_in_display_width():
    for seed in range(1000):
        rng = random.Random(seed)
        columns = []
        for _ in range(rng.randint(0, 6)):
            op, ref, hyp = rng.choice(["ok", "sub", "del", "ins"]), rng.choice(WORDS), rng.choice(WORDS)
            hyp = None if op == "del" else ref if op == "ok" else hyp
            columns.append(Column(op, None if op == "ins" else ref, hyp))
        for k in range(len(columns) + 1):  # every column starts at the same width: a last one ends each prefix
            ref_line, hyp_line = sclite_lines([*columns[:k], Column("ok", "z", "z")])
            assert display_width(ref_line) == display_width(hyp_line), (seed, columns[:k])


# --- paired bootstrap ---------------------------------------------------------------------------

def test_the_bootstrap_interval_holds_the_difference_and_is_zero_for_identical_systems():
    for seed in range(300):
        rng = random.Random(seed)
        n = rng.randint(1, 40)
        lengths = [rng.randint(0, 20) for _ in range(n)]
        errors_a, errors_b = ([rng.randint(0, k + 3) for k in lengths] for _ in range(2))
        groups = [rng.choice("abcdefghijkl") for _ in range(n)] if rng.random() < 0.5 else None
        boot = paired_bootstrap(errors_a, errors_b, lengths, groups, resamples=200, seed=seed)
        again = paired_bootstrap(errors_a, errors_b, lengths, groups, resamples=200, seed=seed)
        same = paired_bootstrap(errors_a, errors_a, lengths, groups, resamples=200, seed=seed)
        if not sum(lengths):
            assert math.isnan(boot.difference) and math.isnan(same.difference)
            continue
        assert boot == again, seed  # seeded: the same interval every run
        assert boot.low <= boot.difference <= boot.high, seed
        assert (same.difference, same.low, same.high, same.prob_b_better) == (0.0, 0.0, 0.0, 0.0), seed
