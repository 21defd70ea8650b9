"""Manifests, the speech dataset, length-bucketed batches and collation."""

import json
import random
from pathlib import Path

import pytest
import torch

from asr.audio import AudioError
from asr.batching import BucketBatchSampler
from asr.data import (Example, ManifestError, SpeechDataset, Utterance, collate, frames_needed, read_manifest,
                      total_hours, write_manifest)
from asr.text import CharTokenizer


def write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# --- read_manifest / write_manifest -------------------------------------------------------

def test_read_manifest_resolves_relative_audio_paths_against_the_manifest_folder(tmp_path):
    folder = tmp_path / "lists"
    folder.mkdir()
    path = write_lines(folder / "m.jsonl", [{"audio_filepath": "wav/a.flac", "duration": 1.5, "text": "hi"}])
    [utt] = read_manifest(path)
    assert Path(utt.audio_filepath) == folder / "wav" / "a.flac"


def test_read_manifest_keeps_absolute_audio_paths(tmp_path):
    absolute = str(tmp_path / "elsewhere" / "a.wav")
    path = write_lines(tmp_path / "m.jsonl", [{"audio_filepath": absolute, "duration": 1, "text": "hi"}])
    assert read_manifest(path)[0].audio_filepath == absolute


def test_read_manifest_reads_optional_speaker_and_id(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", [
        {"audio_filepath": "/a.wav", "duration": 1, "text": "x", "speaker": 7, "id": "utt1"},
        {"audio_filepath": "/b.wav", "duration": 2, "text": "y"},
    ])
    with_both, without = read_manifest(path)
    assert (with_both.speaker, with_both.id) == ("7", "utt1")
    assert (without.speaker, without.id) == (None, None)


def test_read_manifest_converts_duration_to_float_and_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", ["", json.dumps({"audio_filepath": "/a.wav", "duration": "2.5",
                                                              "text": "x"}), "   "])
    [utt] = read_manifest(path)
    assert utt.duration == 2.5 and isinstance(utt.duration, float)


GOOD = json.dumps({"audio_filepath": "/a.wav", "duration": 1.0, "text": "x"})


@pytest.mark.parametrize("bad_line, words", [
    ('{"audio_filepath": "/b.wav", "duration": 1.0,', "JSON"),
    ('["/b.wav", 1.0, "x"]', "object"),
    (json.dumps({"audio_filepath": "/b.wav", "text": "x"}), "duration"),
    (json.dumps({"duration": 1.0, "text": "x"}), "audio_filepath"),
    (json.dumps({"audio_filepath": "/b.wav", "duration": 1.0}), "text"),
    (json.dumps({"audio_filepath": "/b.wav", "duration": "long", "text": "x"}), "long"),
    (json.dumps({"audio_filepath": "/b.wav", "duration": None, "text": "x"}), "duration"),
])
def test_a_bad_manifest_line_raises_manifest_error_naming_file_and_line(tmp_path, bad_line, words):
    path = write_lines(tmp_path / "m.jsonl", [GOOD, GOOD, bad_line])
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    message = str(info.value)
    assert f"{path}:3" in message
    assert words in message


@pytest.mark.parametrize("field, value, words", [
    ("audio_filepath", None, "audio_filepath None"), ("audio_filepath", 5, "audio_filepath 5"),
    ("audio_filepath", ["a"], "audio_filepath ['a']"), ("audio_filepath", "", "audio_filepath ''"),
    ("text", None, "text None"), ("text", 5, "text 5"),
    ("duration", float("nan"), "duration nan"), ("duration", float("inf"), "duration inf"),
    ("duration", -5, "duration -5"), ("duration", 0, "duration 0"), ("duration", True, "duration True"),
])
def test_manifest_fields_of_the_wrong_type_or_impossible_durations_are_refused_naming_file_and_line(
        tmp_path, field, value, words):
    row = {"audio_filepath": "/b.wav", "duration": 1.0, "text": "x", field: value}
    path = write_lines(tmp_path / "m.jsonl", [GOOD, json.dumps(row)])
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert str(info.value).startswith(f"{path}:2: {words} ")


def test_a_manifest_may_say_nothing_is_said_with_an_empty_text(tmp_path):
    # a silent clip's reference: scored as insertions of whatever is heard (asr.metrics)
    path = write_lines(tmp_path / "m.jsonl", [{"audio_filepath": "/a.wav", "duration": 1.0, "text": ""}])
    assert read_manifest(path)[0].text == ""


def test_the_manifest_names_are_still_imported_from_asr_data_as_they_are_from_asr_manifest():
    import asr.data
    import asr.manifest

    for name in ("ManifestError", "Utterance", "read_manifest", "write_manifest"):
        assert getattr(asr.data, name) is getattr(asr.manifest, name)


def test_a_missing_manifest_raises_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "none.jsonl")


def test_write_manifest_then_read_manifest_gives_the_same_utterances(tmp_path):
    utts = [Utterance(str(tmp_path / "a.wav"), 1.25, "héllo wörld", "s1", "a"),
            Utterance(str(tmp_path / "b.wav"), 3.0, "second", None, None),
            Utterance(str(tmp_path / "c.wav"), 0.5, "third", "s2", None)]
    path = tmp_path / "sub" / "m.jsonl"
    assert write_manifest(path, utts) == 3
    assert read_manifest(path) == utts
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.jsonl"]


def test_write_manifest_omits_missing_optional_fields(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [Utterance("/a.wav", 1.0, "x")])
    assert json.loads(path.read_text()) == {"audio_filepath": "/a.wav", "duration": 1.0, "text": "x"}


def test_total_hours_sums_durations():
    assert total_hours([Utterance("/a", 1800.0, "x"), Utterance("/b", 5400.0, "y")]) == 2.0


# --- collate ------------------------------------------------------------------------------

def test_collate_zero_pads_waveforms_and_targets_and_records_lengths():
    examples = [Example(4, torch.ones(3), torch.tensor([5, 6])),
                Example(9, torch.full((5,), 2.0), torch.tensor([7, 8, 9]))]
    batch = collate(examples)
    assert batch.waveforms.shape == (2, 5) and batch.waveforms.dtype == torch.float32
    assert batch.wave_lengths.tolist() == [3, 5]
    assert batch.waveforms[0].tolist() == [1, 1, 1, 0, 0]
    assert batch.waveforms[1].tolist() == [2] * 5
    assert batch.targets.tolist() == [[5, 6, 0], [7, 8, 9]] and batch.targets.dtype == torch.long
    assert batch.target_lengths.tolist() == [2, 3]
    assert batch.indices == [4, 9]


def test_collate_of_empty_targets_gives_a_one_column_target_tensor():
    batch = collate([Example(0, torch.ones(2), torch.tensor([], dtype=torch.long))])
    assert batch.targets.shape == (1, 1) and batch.target_lengths.tolist() == [0]


# --- frames_needed ------------------------------------------------------------------------

@pytest.mark.parametrize("targets, frames", [([1, 1, 2], 4), ([1, 2, 3], 3), ([3, 3, 3], 5), ([7], 1), ([], 0)])
def test_frames_needed_adds_one_blank_between_each_repeated_pair(targets, frames):
    assert frames_needed(torch.tensor(targets, dtype=torch.long)) == frames


# --- BucketBatchSampler -------------------------------------------------------------------

def durations(n=300, seed=0):
    rng = random.Random(seed)
    return [round(rng.uniform(0.5, 15.0), 2) for _ in range(n)]


def flat(batches):
    return [item for batch in batches for item in batch]


def padded_seconds(durs, batch):
    return max(durs[i] / speed for i, speed in batch) * len(batch)


@pytest.mark.parametrize("kwargs", [
    dict(shuffle=True, sortagrad=False),
    dict(shuffle=True, sortagrad=True),
    dict(shuffle=False),
    dict(shuffle=True, speed_factors=(0.9, 1.0, 1.1)),
])
@pytest.mark.parametrize("epoch", [0, 1])
def test_every_index_appears_exactly_once_per_epoch(kwargs, epoch):
    durs = durations()
    sampler = BucketBatchSampler(durs, batch_seconds=60, max_batch_size=8, seed=3, **kwargs)
    sampler.set_epoch(epoch)
    indices = [i for i, _ in flat(sampler)]
    assert sorted(indices) == list(range(len(durs)))


@pytest.mark.parametrize("speed_factors", [(1.0,), (0.9, 1.0, 1.1)])
def test_no_batch_exceeds_batch_seconds_of_padded_audio_or_max_batch_size(speed_factors):
    durs = durations() + [90.0, 200.0]  # two utterances longer than a whole batch
    sampler = BucketBatchSampler(durs, batch_seconds=60, max_batch_size=8, seed=1, speed_factors=speed_factors)
    for epoch in range(3):
        for batch in sampler.batches(epoch):
            assert len(batch) <= 8
            if len(batch) > 1:
                assert padded_seconds(durs, batch) <= 60 + 1e-9
    over_long = [b for b in sampler.batches(0) if padded_seconds(durs, b) > 60]
    assert sorted(i for b in over_long for i, _ in b) == [300, 301]
    assert all(len(b) == 1 for b in over_long)


def test_max_batch_size_limits_batches_of_short_utterances():
    sampler = BucketBatchSampler([1.0] * 20, batch_seconds=1000, max_batch_size=6, shuffle=False)
    assert [len(b) for b in sampler.batches(0)] == [6, 6, 6, 2]


def test_sortagrad_first_epoch_runs_in_ascending_length_order():
    durs = durations()
    sampler = BucketBatchSampler(durs, batch_seconds=60, max_batch_size=8, sortagrad=True, seed=5)
    lengths = [durs[i] for i, _ in flat(sampler.batches(0))]
    assert lengths == sorted(lengths)


def test_after_the_sortagrad_epoch_batches_are_shuffled():
    durs = durations()
    sampler = BucketBatchSampler(durs, batch_seconds=60, max_batch_size=8, sortagrad=True, seed=5)
    lengths = [durs[i] for i, _ in flat(sampler.batches(1))]
    assert lengths != sorted(lengths)


def test_the_same_seed_and_epoch_give_identical_batches():
    durs = durations()
    a = BucketBatchSampler(durs, 60, 8, seed=7, speed_factors=(0.9, 1.0, 1.1))
    b = BucketBatchSampler(durs, 60, 8, seed=7, speed_factors=(0.9, 1.0, 1.1))
    for epoch in (0, 4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b)


def test_different_epochs_give_different_batches():
    sampler = BucketBatchSampler(durations(), 60, 8, seed=7)
    assert sampler.batches(1) != sampler.batches(2)


def test_different_seeds_give_different_batches():
    durs = durations()
    assert BucketBatchSampler(durs, 60, 8, seed=1).batches(1) != BucketBatchSampler(durs, 60, 8, seed=2).batches(1)


def test_set_epoch_with_skip_yields_the_tail_of_the_same_epoch():
    sampler = BucketBatchSampler(durations(), 60, 8, seed=7, speed_factors=(0.9, 1.0, 1.1))
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_epoch(3, skip=5)
    assert list(sampler) == full[5:]
    assert len(sampler) == len(full) - 5


def test_len_is_the_number_of_batches_yielded():
    sampler = BucketBatchSampler(durations(), 60, 8, seed=7)
    sampler.set_epoch(2)
    assert len(sampler) == len(list(sampler))
    sampler.set_epoch(2, skip=10_000)
    assert len(sampler) == 0 and list(sampler) == []


def shards(durs, world_size, epoch, **kwargs):
    return [BucketBatchSampler(durs, 60, 8, seed=2, rank=r, world_size=world_size, **kwargs).batches(epoch)
            for r in range(world_size)]


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("sortagrad", [True, False])
@pytest.mark.parametrize("epoch", [0, 1])
def test_ranks_take_the_whole_epochs_batches_in_turn_padded_with_its_first_ones_to_equal_counts(
        world_size, sortagrad, epoch):
    # as torch's DistributedSampler pads: no batch is left out (in sortagrad's first epoch the last
    # one holds the longest utterances), and every rank takes the same number of steps
    durs = durations(301)
    whole = BucketBatchSampler(durs, 60, 8, seed=2, sortagrad=sortagrad).batches(epoch)
    per_rank = shards(durs, world_size, epoch, sortagrad=sortagrad)
    steps = -(-len(whole) // world_size)
    assert [len(s) for s in per_rank] == [steps] * world_size
    in_turn = [per_rank[k % world_size][k // world_size] for k in range(steps * world_size)]
    assert in_turn == whole + whole[: len(in_turn) - len(whole)]
    assert sorted(i for i, _ in flat(in_turn[: len(whole)])) == list(range(len(durs)))


@pytest.mark.parametrize("batches", [1, 2, 3])
def test_an_epoch_of_fewer_batches_than_processes_still_trains_every_utterance_on_every_rank(batches):
    durs = [50.0] * batches  # one utterance per batch
    per_rank = shards(durs, 4, 0)
    assert [len(s) for s in per_rank] == [1] * 4
    assert {i for s in per_rank for i, _ in flat(s)} == set(range(batches))


def test_a_position_in_global_batches_means_the_same_batch_for_any_number_of_processes():
    # --resume stores a position as global batches (steps x processes) and continues with another count
    durs = durations(301)
    whole = BucketBatchSampler(durs, 60, 8, seed=2).batches(1)
    for world_size in (1, 2, 3):
        per_rank = shards(durs, world_size, 1)
        for k in range(len(whole)):
            assert per_rank[k % world_size][k // world_size] == whole[k]


@pytest.mark.parametrize("world_size", [1, 3])
def test_batch_counts_are_each_epochs_own_and_every_rank_takes_the_steps_they_make(world_size):
    # sortagrad's sorted first epoch packs into fewer batches than shuffled ones, whose jittered
    # lengths pack their own way: a run's steps are the sum of its epochs', not a multiple of the first's
    samplers = [BucketBatchSampler(durations(301), 60, 8, seed=2, sortagrad=True, speed_factors=(0.9, 1.0, 1.1),
                                   rank=r, world_size=world_size) for r in range(world_size)]
    counts = samplers[0].batch_counts(6)
    assert counts == [len(samplers[0].global_batches(e)) for e in range(6)]
    assert counts[0] < min(counts[1:]) and len(set(counts[1:])) > 1
    for sampler in samplers:
        assert [sampler.steps(n) for n in counts] == [len(sampler.batches(e)) for e in range(6)]
    assert samplers[0].batch_counts(6, start=4) == counts[4:]


def test_items_are_index_speed_pairs_with_speeds_from_the_given_factors():
    factors = (0.9, 1.0, 1.1)
    sampler = BucketBatchSampler(durations(), 60, 8, seed=7, speed_factors=factors)
    items = flat(sampler.batches(1))
    assert all(isinstance(i, int) and speed in factors for i, speed in items)
    assert {speed for _, speed in items} == set(factors)


def test_without_shuffle_every_speed_is_one():
    sampler = BucketBatchSampler(durations(), 60, 8, shuffle=False, speed_factors=(0.9, 1.1))
    assert {speed for _, speed in flat(sampler.batches(0))} == {1.0}


# --- SpeechDataset ------------------------------------------------------------------------

@pytest.fixture
def tokenizer():
    return CharTokenizer.build(["abcdefghijklmnopqrstuvwxyz'"])


def test_dataset_items_are_float_mono_waveforms_at_the_model_rate(sine_wav, tokenizer):
    mono16 = sine_wav("a.wav", seconds=0.5, sample_rate=16000)
    stereo8 = sine_wav("b.wav", seconds=0.5, sample_rate=8000, channels=2)
    utts = [Utterance(str(mono16), 0.5, "Hello there"), Utterance(str(stereo8), 0.5, "general kenobi")]
    ds = SpeechDataset(utts, tokenizer, sample_rate=16000)
    assert len(ds) == 2 and ds.skipped == []
    for index in range(2):
        example = ds[index]
        assert example.index == index
        assert example.waveform.dtype == torch.float32 and example.waveform.dim() == 1
        assert abs(example.waveform.numel() - 8000) <= 2
        assert 0.4 < example.waveform.abs().max() <= 0.51
    assert ds.durations == [0.5, 0.5]


def test_dataset_targets_are_the_token_ids_of_the_normalized_text(sine_wav, tokenizer):
    ds = SpeechDataset([Utterance(str(sine_wav()), 0.5, "Ab, C!")], tokenizer, sample_rate=16000)
    assert ds[0].targets.tolist() == tokenizer.encode("ab c")
    assert ds[0].targets.dtype == torch.long


def test_dataset_puts_empty_and_unknown_character_utterances_in_skipped(sine_wav, tokenizer):
    wav = str(sine_wav())
    good = Utterance(wav, 0.5, "good", id="good")
    empty = Utterance(wav, 0.5, " ?! ", id="empty")
    foreign = Utterance(wav, 0.5, "naïve 42", id="foreign")
    ds = SpeechDataset([empty, good, foreign], tokenizer, sample_rate=16000)
    assert ds.utterances == [good]
    reasons = dict((u.id, reason) for u, reason in ds.skipped)
    assert set(reasons) == {"empty", "foreign"}
    assert "empty" in reasons["empty"]
    for ch in "ï42":
        assert repr(ch) in reasons["foreign"]


def test_keep_unspellable_keeps_them_in_order_with_no_labels_and_collate_marks_them(sine_wav, tokenizer):
    wav = str(sine_wav())
    good = Utterance(wav, 0.5, "good", id="good")
    empty = Utterance(wav, 0.5, " ?! ", id="empty")
    foreign = Utterance(wav, 0.5, "naïve 42", id="foreign")
    ds = SpeechDataset([empty, good, foreign], tokenizer, sample_rate=16000, keep_unspellable=True)
    assert ds.utterances == [empty, good, foreign] and ds.skipped == []
    assert ds.texts == ["", "good", "naïve 42"]  # what WER and CER score
    assert ds.targets[0].tolist() == [] and ds.targets[1].tolist() == tokenizer.encode("good")  # empty: silence
    assert ds.targets[2] is None and ds[2].targets is None
    assert list(ds.unspellable) == [2] and "'ï'" in ds.unspellable[2]
    batch = collate([ds[i] for i in (2, 1, 0)])
    assert batch.has_labels.tolist() == [False, True, True]
    assert batch.target_lengths.tolist() == [0, 4, 0] and batch.targets[0].tolist() == [0] * 4
    ds.keep([2, 1])  # renumbered with the rest
    assert ds.unspellable.keys() == {0} and ds.targets[0] is None


def test_collate_marks_every_item_of_a_labelled_batch_as_having_labels():
    batch = collate([Example(0, torch.ones(2), torch.tensor([3])), Example(1, torch.ones(3), torch.tensor([4, 5]))])
    assert batch.has_labels.tolist() == [True, True]
    assert batch.to("cpu").has_labels.tolist() == [True, True]  # moved with the other tensors


def test_speed_perturbation_shortens_the_waveform_by_the_speed_factor(sine_wav, tokenizer):
    ds = SpeechDataset([Utterance(str(sine_wav(seconds=0.5)), 0.5, "a")], tokenizer, sample_rate=16000)
    normal = ds[(0, 1.0)].waveform.numel()
    fast = ds[(0, 1.1)].waveform.numel()
    slow = ds[(0, 0.9)].waveform.numel()
    assert normal == 8000
    assert fast == pytest.approx(8000 / 1.1, abs=2)
    assert slow == pytest.approx(8000 / 0.9, abs=2)


def test_a_plain_index_means_speed_one(sine_wav, tokenizer):
    ds = SpeechDataset([Utterance(str(sine_wav()), 0.5, "a")], tokenizer, sample_rate=16000)
    assert torch.equal(ds[0].waveform, ds[(0, 1.0)].waveform)


def test_cached_and_uncached_datasets_give_identical_samples(sine_wav, tokenizer):
    utts = [Utterance(str(sine_wav(sample_rate=8000)), 0.5, "a")]
    cached = SpeechDataset(utts, tokenizer, sample_rate=16000, cache=True)
    uncached = SpeechDataset(utts, tokenizer, sample_rate=16000, cache=False)
    first = cached[(0, 1.1)].waveform
    assert torch.equal(cached[(0, 1.1)].waveform, first)
    assert torch.equal(uncached[(0, 1.1)].waveform, first)
    assert len(uncached._cache) == 0 and len(cached._cache) == 1


def float_wav(path, peak, seconds=0.5):
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * 16000)) / 16000
    wave = np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)  # a swell: many levels below the peak
    sf.write(str(path), (wave * peak / np.abs(wave).max()).astype(np.float32), 16000, subtype="FLOAT")
    return path


def test_training_reads_16_bit_pcm_audio_exactly_as_transcription_does(sine_wav, tokenizer):
    from asr.audio import load_audio

    path = sine_wav(seconds=0.5)
    ds = SpeechDataset([Utterance(str(path), 0.5, "a")], tokenizer, sample_rate=16000)
    assert torch.equal(ds[0].waveform, load_audio(path, 16000))


@pytest.mark.parametrize("peak", [4.0, 1.0, 10 ** (-75 / 20)])  # over full scale; full scale; -75 dBFS
def test_training_reads_float_audio_of_any_level_as_transcription_does_to_16_bits_of_its_peak(
        tmp_path, tokenizer, peak):
    # no clipping above full scale, no quiet clip reduced to a few levels
    from asr.audio import load_audio

    path = float_wav(tmp_path / "f.wav", peak)
    for cache in (True, False):
        ds = SpeechDataset([Utterance(str(path), 0.5, "a")], tokenizer, sample_rate=16000, cache=cache)
        read, heard = ds[0].waveform, load_audio(path, 16000)
        assert (read - heard).abs().max() <= peak / 32767 / 2 * 1.001
        assert read.abs().max() == pytest.approx(peak, rel=1e-4)
        assert len(read.unique()) > 1000


def test_with_bpe_dropout_labels_are_redrawn_per_epoch_but_fixed_within_one(sine_wav):
    from asr.tokenizers import SubwordTokenizer

    texts = ["the cat sat on the mat", "the cats sat on the mats", "that thin cat"] * 10
    bpe = SubwordTokenizer.build(texts, vocab_size=25)
    utts = [Utterance(str(sine_wav()), 0.5, "the cats sat on the mats")]
    plain = SpeechDataset(utts, bpe, sample_rate=16000)
    ds = SpeechDataset(utts, bpe, sample_rate=16000, bpe_dropout=0.5, seed=3)
    by_epoch = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        labels = ds[0].targets.tolist()
        assert ds[0].targets.tolist() == labels  # the same epoch draws the same spelling
        assert bpe.decode(labels) == "the cats sat on the mats"
        by_epoch.append(labels)
    assert len({tuple(x) for x in by_epoch}) > 1
    assert plain[0].targets.tolist() == bpe.encode("the cats sat on the mats")  # off: BPE's own spelling
    again = SpeechDataset(utts, bpe, sample_rate=16000, bpe_dropout=0.5, seed=3)
    again.set_epoch(5)
    assert again[0].targets.tolist() == by_epoch[5]  # a function of (seed, epoch, utterance)


def test_unreadable_audio_is_warned_about_once_naming_the_file_and_manifest_and_not_read_again(
        tmp_path, sine_wav, tokenizer, capsys, monkeypatch):
    import asr.data as data_module

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_text("junk\n")
    ds = SpeechDataset([Utterance(str(sine_wav()), 0.5, "a"), Utterance(str(corrupt), 0.5, "b")], tokenizer,
                       sample_rate=16000, source="train.jsonl")
    reads = []
    real_load = data_module.load_audio
    monkeypatch.setattr(data_module, "load_audio", lambda path, rate: reads.append(path) or real_load(path, rate))
    for _ in range(2):  # two epochs, one at another speed
        with pytest.raises(AudioError, match="corrupt.wav: not readable as audio"):
            ds[(1, 1.1)]
        with pytest.raises(AudioError, match="corrupt.wav: not readable as audio"):
            ds[1]
    assert reads == [str(corrupt)]
    assert list(ds.unreadable) == [1] and "not readable as audio" in ds.unreadable[1]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and err.startswith(f"warning: train.jsonl: skipped {corrupt}: not readable")
    assert ds[0].waveform.numel() == 8000  # the readable one is unaffected


def test_drop_unreadable_leaves_out_missing_and_corrupt_audio_and_keeps_the_rest_aligned(
        tmp_path, sine_wav, tokenizer, capsys):
    (tmp_path / "corrupt.wav").write_text("junk\n")
    utts = [Utterance(str(sine_wav("a.wav", seconds=0.5)), 0.5, "a", id="a"),
            Utterance(str(tmp_path / "corrupt.wav"), 0.5, "b", id="b"),
            Utterance(str(tmp_path / "gone.wav"), 0.5, "c", id="c"),
            Utterance(str(sine_wav("d.wav", seconds=0.25)), 0.25, "d", id="d")]
    ds = SpeechDataset(utts, tokenizer, sample_rate=16000)
    dropped = ds.drop_unreadable()
    assert [(u.id, problem.split(" (")[0]) for u, problem in dropped] == [("b", "not readable as audio"),
                                                                          ("c", "file not found")]
    assert [u.id for u in ds.utterances] == ["a", "d"] and ds.unreadable == {}
    assert [ds[i].targets.tolist() for i in range(2)] == [tokenizer.encode("a"), tokenizer.encode("d")]
    assert [ds[i].waveform.numel() for i in range(2)] == [8000, 4000]  # each utterance its own audio
    assert ds.durations == [0.5, 0.25]


def test_the_batch_loader_leaves_unreadable_audio_out_counts_it_and_goes_on(tmp_path, sine_wav, tokenizer):
    from asr.batching import BatchLoader

    (tmp_path / "corrupt.wav").write_text("junk\n")
    utts = [Utterance(str(sine_wav("a.wav")), 0.5, "a"), Utterance(str(tmp_path / "corrupt.wav"), 0.5, "b"),
            Utterance(str(sine_wav("c.wav")), 0.5, "c")]
    ds = SpeechDataset(utts, tokenizer, sample_rate=16000)
    loader = BatchLoader(ds, [[(0, 1.0), (1, 1.0)], [(1, 1.0)], [(2, 1.0)]])
    # the batch of nothing readable keeps its place (as None): every rank takes the same steps
    assert [None if batch is None else batch.indices for batch in loader] == [[0], None, [2]]
    assert loader.unreadable == 2


def test_a_directory_or_an_audio_file_given_as_a_manifest_is_named_for_what_it_is(tmp_path):
    with pytest.raises(ManifestError, match="a directory, not a manifest"):
        read_manifest(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"RIFF\x00\xff\xfe")
    with pytest.raises(ManifestError, match="a.wav: not a manifest"):
        read_manifest(tmp_path / "a.wav")
