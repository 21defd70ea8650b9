"""Cutting long audio at pauses, in bounded memory, from blocks of any size."""

import math

import numpy as np
import pytest
import torch

from asr.noise import coloured_noise
from asr.segmenter import Segmenter, SegmenterOptions, array_blocks, loud_frames, quietest_point
from tests.conftest import SHARED_SO762, _shortest_utterances, syllabic_tone

RATE = 16000


def bursts(layout, seed=0):
    """Noise bursts ("speech", amplitude ~0.3, rising and falling 4 times a second as syllables
    do: steady noise would be taken for no speech) and exact silences: [(seconds, loud?), ...]."""
    rng = np.random.default_rng(seed)

    def speech(n):
        return 0.3 * rng.standard_normal(n) * (0.6 + 0.4 * np.cos(2 * np.pi * 4 * np.arange(n) / RATE))

    parts = [(speech(int(s * RATE)) if loud else np.zeros(int(s * RATE))) for s, loud in layout]
    return np.concatenate(parts).astype(np.float32)


def segments_of(signal, block_seconds=1.0, **options):
    seg = Segmenter(RATE, SegmenterOptions(**options))
    return list(seg.segments(array_blocks(signal, int(block_seconds * RATE))))


def test_cuts_fall_inside_pauses_not_inside_speech():
    layout = [(2.5, True), (0.6, False)] * 8  # 24.8 s with a pause every 3.1 s
    signal = bursts(layout)
    segs = segments_of(signal, max_seconds=6.0, min_seconds=2.0, silence_rms=0.0)
    assert len(segs) >= 4
    for s in segs[1:]:
        cut = int(round(s.start * RATE))
        assert np.all(signal[cut - 160: cut + 160] == 0), f"cut at {s.start:.2f} s is not in a pause"


def test_a_long_recording_is_cut_at_its_pauses_one_utterance_a_segment():
    # The model was trained on single utterances: several in one segment, with the pauses between
    # them, decoded worse (bench/segment_long_files.py: 0.8-5 points of WER).
    layout = [(3.0, True), (0.6, False), (2.5, True), (0.8, False), (4.0, True), (0.3, False), (2.2, True)] * 2
    segs = segments_of(bursts(layout, seed=4), silence_rms=0.0)  # 26.8 s; the defaults: 0.5 s pauses after 2 s
    # each starts 0.2 s (pause_margin_seconds) before its speech; a 0.3 s pause is too short to cut at
    assert [round(s.start, 2) for s in segs] == [0.0, 3.4, 6.7, 16.8, 20.1]


def test_a_pause_cut_at_keeps_a_margin_of_quiet_on_each_side_and_skips_its_middle():
    # clips are cut close to their speech: 0.4 s of extra quiet at each end cost the built-in
    # package 3.6-4.5 points of WER on valid clips (README.md)
    signal = bursts([(3.0, True), (2.0, False), (2.5, True), (1.0, False), (18.0, True)], seed=6)
    first, second, *_ = segments_of(signal, silence_rms=0.0)
    assert first.start == 0 and first.samples.numel() == int(3.2 * RATE)  # speech + 0.2 s of the pause
    assert second.start == pytest.approx(4.8) and second.samples.numel() == int(2.9 * RATE)  # 0.2 s each side
    assert first.covers == pytest.approx(4.8)  # the skipped middle counts as done for progress
    wide = segments_of(signal, silence_rms=0.0, pause_margin_seconds=5.0)  # a margin wider than the pause
    assert wide[1].start == pytest.approx(4.0)  # ... cuts in its middle and skips nothing


def test_a_noisy_recording_is_cut_at_pauses_that_lie_at_its_noise_floor_not_40_db_below_its_speech():
    # a room's noise 30 dB below the speech: its pauses are quiet by the noise floor alone
    # (the built-in package on valid clips under noise at -50 dBFS: README.md)
    layout = [(3.0, True), (0.8, False), (2.5, True), (0.8, False), (4.0, True), (0.8, False)] * 3
    signal = bursts(layout, seed=7)
    signal += 0.3 * 10 ** (-30 / 20) * np.random.default_rng(8).standard_normal(signal.size).astype(np.float32)
    segs = segments_of(signal, silence_rms=0.0)  # 35.7 s
    assert [round(s.start, 2) for s in segs[:4]] == [0.0, 3.6, 6.9, 11.7]  # 0.2 s before each speech
    by_loudest_alone = segments_of(signal, silence_rms=0.0, noise_floor_db=0.0)
    # no pause 40 dB down: cut at the quietest point of each window's second half only
    assert all(s.samples.numel() >= 10 * RATE for s in by_loudest_alone[:-1])


def test_leading_digital_silence_or_a_dropout_does_not_hide_a_noisy_recording_s_pauses():
    layout = [(3.0, True), (0.8, False), (2.5, True), (0.8, False), (4.0, True), (0.8, False)] * 3
    signal = bursts(layout, seed=7)
    signal += 0.3 * 10 ** (-30 / 20) * np.random.default_rng(8).standard_normal(signal.size).astype(np.float32)
    signal[: int(0.05 * RATE)] = 0  # zeros before the recording starts
    signal[int(1.0 * RATE): int(1.03 * RATE)] = 0  # a 30 ms dropout
    segs = segments_of(signal, silence_rms=0.0)
    assert [round(s.start, 2) for s in segs[:4]] == [0.0, 3.6, 6.9, 11.7]


def test_the_noise_floor_cuts_are_the_same_whatever_the_block_size():
    signal = bursts([(2.0, True), (0.7, False)] * 12, seed=9)
    signal += 0.01 * np.random.default_rng(10).standard_normal(signal.size).astype(np.float32)
    a = segments_of(signal, block_seconds=0.37, silence_rms=0.0)
    b = segments_of(signal, block_seconds=13.0, silence_rms=0.0)
    assert len(a) > 2 and [(s.start, s.samples.numel()) for s in a] == [(s.start, s.samples.numel()) for s in b]


def test_audio_shorter_than_max_seconds_is_one_segment_whatever_its_pauses():
    # as evaluate decodes an utterance of under 20 s: whole
    segs = segments_of(bursts([(3.0, True), (0.8, False), (2.5, True)], seed=5), silence_rms=0.0)
    assert [(s.start, s.samples.numel()) for s in segs] == [(0.0, int(6.3 * RATE))]


def test_segments_are_in_order_and_lose_no_sample_but_the_middles_of_pauses():
    signal = bursts([(3.0, True), (0.9, False), (7.0, True), (0.2, False), (9.0, True)], seed=1)
    segs = segments_of(signal, max_seconds=4.0, min_seconds=1.0, silence_rms=0.0)
    position = 0
    for s in segs:
        start = int(round(s.start * RATE))
        assert start >= position and not signal[position:start].any()  # skipped: silence only
        assert np.array_equal(s.samples.numpy(), signal[start: start + s.samples.numel()])
        assert 0 < s.samples.numel() <= 4.0 * RATE
        position = start + s.samples.numel()
    assert position == signal.size
    assert sum(s.samples.numel() for s in segs) == signal.size - int(0.5 * RATE)  # 0.9 s pause, 0.2 s kept each side
    assert sum(s.covers for s in segs) == pytest.approx(signal.size / RATE)


def test_speech_without_any_pause_is_still_cut_at_the_maximum_length():
    signal = bursts([(30.0, True)], seed=2)
    segs = segments_of(signal, max_seconds=8.0, min_seconds=2.0, silence_rms=0.0)
    assert len(segs) >= 4 and all(s.samples.numel() <= 8 * RATE for s in segs)


def test_block_size_does_not_change_the_segments():
    signal = bursts([(2.0, True), (0.7, False)] * 6, seed=3)
    a = segments_of(signal, block_seconds=0.37, max_seconds=5.0, min_seconds=1.0)
    b = segments_of(signal, block_seconds=13.0, max_seconds=5.0, min_seconds=1.0)
    assert [(s.start, s.samples.numel()) for s in a] == [(s.start, s.samples.numel()) for s in b]


def test_digital_silence_is_flagged_so_the_model_can_skip_it():
    signal = bursts([(10.0, False), (2.0, True), (10.0, False)])
    segs = segments_of(signal, max_seconds=5.0, min_seconds=1.0)
    assert any(s.silent for s in segs) and any(not s.silent for s in segs)
    assert all((s.samples.abs().max() > 0) != s.silent for s in segs)
    assert all(s.silent for s in segments_of(np.zeros(5 * RATE, dtype=np.float32)))


@pytest.mark.parametrize("pause_at", [2.0, 3.3, 4.6])
def test_the_quietest_point_is_the_middle_of_the_pause(pause_at):
    signal = bursts([(pause_at, True), (0.4, False), (6.0 - pause_at, True)], seed=4)
    cut = quietest_point(signal, RATE, 0, signal.size, SegmenterOptions())
    assert pause_at * RATE < cut < (pause_at + 0.4) * RATE


def test_quiet_edges_longer_than_a_second_are_cut_to_half_a_second_and_keep_their_place_in_time():
    signal = bursts([(3.0, False), (2.0, True), (2.5, False)], seed=4)
    signal[: 3 * RATE] += 1e-3  # low-level noise, 50 dB below the speech: quiet, not digital silence
    (seg,) = segments_of(signal, max_seconds=20.0)
    assert seg.start == pytest.approx(2.5, abs=0.03)  # speech at 3.0 s, half a second before it kept
    assert (seg.start + seg.samples.numel() / RATE) == pytest.approx(5.5, abs=0.03)
    assert np.array_equal(seg.samples.numpy(), signal[int(round(seg.start * RATE)):][: seg.samples.numel()])


def test_edges_as_short_as_a_training_clips_are_left_alone():
    signal = bursts([(0.7, False), (2.0, True), (0.9, False)], seed=5)  # speechocean762's: at most ~0.7 s
    (seg,) = segments_of(signal, max_seconds=20.0)
    assert seg.start == 0 and seg.samples.numel() == signal.size
    (untrimmed,) = segments_of(bursts([(3.0, False), (2.0, True)], seed=4), max_seconds=20.0, trim_after_seconds=0)
    assert untrimmed.start == 0 and untrimmed.samples.numel() == 5 * RATE


def test_loud_frames_are_those_within_quiet_db_of_the_loudest_and_none_when_nothing_has_energy():
    # bench/clip_edges.py measures corpora's clip edges by this rule: it must be speech_span's
    energy = np.array([0.0, 1e-5, 1.01e-4, 1e-4, 0.6, 1.0, 0.2, 1e-6])
    assert loud_frames(energy, quiet_db=40.0).tolist() == [2, 3, 4, 5, 6]
    assert loud_frames(energy, quiet_db=3.0).tolist() == [4, 5]
    assert loud_frames(np.zeros(4), quiet_db=40.0).size == 0 and loud_frames(np.zeros(0), quiet_db=40.0).size == 0


def test_segment_starts_are_plain_python_floats_after_a_pause_cut_as_after_any_other():
    # numpy's float64 leaked into Word/Segment times: printed as np.float64(62.48) (the README's
    # `print(word)`), refused by yaml.safe_dump
    layout = [(3.0, True), (0.6, False), (2.5, True), (0.8, False), (4.0, True)] * 3
    segs = segments_of(bursts(layout, seed=4), silence_rms=0.0)
    assert len(segs) > 3 and all(type(s.start) is float and type(s.covers) is float for s in segs)


def test_a_dc_offset_does_not_hide_pauses_or_quiet_edges():
    # A cheap sound card's DC offset is sound to no one (the model's pre-emphasis removes it), but
    # as energy it filled every pause: a long recording was cut at none, its edges never trimmed.
    layout = [(3.0, True), (0.6, False), (2.5, True), (0.8, False), (4.0, True), (0.3, False), (2.2, True)] * 2
    signal = bursts(layout, seed=4)
    plain = segments_of(signal, silence_rms=0.0)
    offset = segments_of(signal + np.float32(0.2), silence_rms=0.0)
    assert [(s.start, s.samples.numel()) for s in offset] == [(s.start, s.samples.numel()) for s in plain]
    edged = bursts([(3.0, False), (2.0, True), (2.5, False)], seed=4) + np.float32(0.05)
    (seg,) = segments_of(edged, max_seconds=20.0)
    assert seg.start == pytest.approx(2.5, abs=0.03)


def test_a_segment_length_under_one_sample_still_ends_in_segments_of_one_sample():
    # 1e-5 s at 16 kHz is 0 samples: the cut loop never advanced
    (first, *rest) = segments_of(np.ones(3, dtype=np.float32) * 0.1, max_seconds=1e-5, silence_rms=0.0)
    assert first.samples.numel() >= 1 and len(rest) <= 2


@pytest.mark.parametrize("option, value", [("max_seconds", 0), ("max_seconds", -1.0), ("max_seconds", math.nan),
                                           ("frame_seconds", 0), ("min_seconds", -1.0), ("pause_seconds", math.inf),
                                           ("silence_rms", math.nan), ("quiet_db", "40")])
def test_segmenter_options_out_of_range_are_refused_by_name_not_a_hang(option, value):
    # max_seconds=0 looped for ever; frame_seconds=0 divided by zero deep in the pause search
    with pytest.raises(ValueError, match=f"^{option} must be a finite number of "):
        SegmenterOptions(**{option: value})


@pytest.mark.parametrize("colour", [0.0, 1.0, 2.0])  # white, pink, brown
@pytest.mark.parametrize("seconds", [0.5, 3.0, 20.0])
def test_steady_noise_of_any_colour_level_or_length_is_flagged_as_holding_no_speech(colour, seconds):
    # a model trained on speech finds words in hiss; steady noise spans about 1 dB over 100 ms frames
    noise = coloured_noise(3, int(seconds * RATE), torch.full((3,), colour), RATE).numpy()
    segmenter = Segmenter(RATE)
    for level, n in zip((0.001, 0.01, 0.1), noise):
        steady = (level * n / n.std()).astype(np.float32)
        assert segmenter.is_silent(steady) and segmenter.is_steady(steady) and not segmenter.is_quiet(steady)
        segs = segments_of(steady, max_seconds=25.0)
        assert [(s.silent, s.steady) for s in segs] == [(True, True)]


def test_a_steady_tone_or_hum_is_flagged_too():
    t = np.arange(3 * RATE) / RATE
    hum = 0.1 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t))
    assert Segmenter(RATE).is_steady(hum.astype(np.float32))
    assert Segmenter(RATE).is_steady((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))


def test_sound_that_rises_and_falls_as_syllables_do_is_not_flagged():
    segmenter = Segmenter(RATE)
    assert not segmenter.is_silent(syllabic_tone(2.0))
    assert not segmenter.is_silent(bursts([(0.4, True), (0.3, False), (0.6, True)]))  # noise then a pause


def test_real_speech_is_not_flagged_even_under_white_noise_at_10_db_snr():
    # speechocean762's shortest train clips: quiet room, a child or adult reading a word or two
    import soundfile as sf

    if not SHARED_SO762.is_dir():
        pytest.skip("../shared/data/speechocean762 is not present")
    clips = _shortest_utterances("train", 20)
    rng, segmenter = np.random.default_rng(1), Segmenter(RATE)
    for _, path, _, _, _ in clips:
        speech, _ = sf.read(str(path), dtype="float32")
        noise = rng.standard_normal(speech.size) * speech.std() / np.sqrt(10)
        assert not segmenter.is_silent(speech) and not segmenter.is_silent((speech + noise).astype(np.float32)), path


def test_steady_db_0_turns_the_rule_off_and_audio_under_three_frames_is_never_judged_steady():
    hiss = (0.01 * np.random.default_rng(2).standard_normal(3 * RATE)).astype(np.float32)
    assert not Segmenter(RATE, SegmenterOptions(steady_db=0.0)).is_silent(hiss)
    assert not Segmenter(RATE).is_steady(hiss[: int(0.29 * RATE)])  # too few 100 ms frames to tell
    assert Segmenter(RATE).is_steady(hiss[: int(0.3 * RATE)])


def test_exact_zeros_before_or_inside_steady_noise_do_not_hide_it():
    # a pause margin's digital silence began the segment after a cut: its boundary frame, part
    # zeros, passed for a quiet frame and the noise for speech ("if fifty fifty fifty")
    noise = (0.003 * np.random.default_rng(3).standard_normal(25 * RATE)).astype(np.float32)
    segs = segments_of(np.concatenate([np.zeros(25 * RATE, np.float32), noise]))
    assert segs and all(s.silent for s in segs) and any(s.steady for s in segs)
    segmenter = Segmenter(RATE)
    assert segmenter.is_steady(np.concatenate([np.zeros(1105, np.float32), noise[: 3 * RATE]]))  # an MP3's delay
    dropout = noise[: 3 * RATE].copy()
    dropout[2 * RATE: 2 * RATE + 1600] = 0
    assert segmenter.is_steady(dropout)


def test_a_word_in_the_last_partial_frame_after_steady_noise_is_heard():
    noise = (0.05 * np.random.default_rng(4).standard_normal(3 * RATE)).astype(np.float32)
    assert not Segmenter(RATE).is_silent(np.concatenate([noise, syllabic_tone(0.09)]))
