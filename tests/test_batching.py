"""The batch loader: what it counts of the batches it prepares ahead of training."""

import time

import torch

from asr.audio import AudioError
from asr.batching import BatchLoader
from asr.data import Example


class Items(dict):
    """A stand-in dataset (the loader only indexes it): ``(index, speed)`` -> Example; the indices in
    ``unreadable`` raise AudioError, as a corrupt file does."""

    def __init__(self, n, unreadable):
        super().__init__({(i, 1.0): Example(i, torch.zeros(160), torch.tensor([1])) for i in range(n)})
        self.unreadable = set(unreadable)

    def __getitem__(self, item):
        if item[0] in self.unreadable:
            raise AudioError(f"{item[0]}.wav", "not readable as audio")
        return super().__getitem__(item)


def test_unreadable_audio_is_counted_as_its_batch_is_handed_out_not_as_it_is_prepared_ahead():
    # a checkpoint mid-epoch saves the count so far; batches prepared ahead of it are read again on
    # resume, so counting them then would count their unreadable files twice in the epoch's log
    sampler = [[(i, 1.0)] for i in range(6)]
    loader = BatchLoader(Items(6, unreadable={2, 3, 5}), sampler, workers=1, prefetch=2)
    seen = []
    for batch in loader:
        time.sleep(0.1)  # a training step: meanwhile the next batches are prepared
        seen.append(loader.unreadable)
    assert seen == [0, 0, 1, 2, 2, 3]
