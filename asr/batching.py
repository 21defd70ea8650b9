"""Batches for training, validation and evaluation: length-bucketed batches of at most a given length of
padded audio (``BucketBatchSampler``), waves taken in order up to such a length (``padded_batches``:
an utterance's pieces, cut at pauses), and a loader that prepares the next ones in background
threads (``BatchLoader``)."""

from __future__ import annotations

import random
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from asr.audio import AudioError
from asr.data import Batch, SpeechDataset, collate


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances, at most ``batch_seconds`` of padded audio each.

    Epoch ``e`` is a pure function of ``(seed, e)``: the order can be recomputed on resume
    and ``skip`` batches already done. With ``sortagrad`` the first epoch runs shortest
    first (Amodei et al. 2016), which stabilizes early CTC training. Each item is an
    ``(index, speed)`` pair; the speed factor is drawn per utterance and epoch.
    """

    def __init__(self, durations: list[float], batch_seconds: float, max_batch_size: int,
                 shuffle: bool = True, sortagrad: bool = False, seed: int = 0,
                 speed_factors: tuple[float, ...] = (1.0,), rank: int = 0, world_size: int = 1):
        self.durations = durations
        self.batch_seconds = batch_seconds
        self.max_batch_size = max_batch_size
        self.shuffle, self.sortagrad, self.seed = shuffle, sortagrad, seed
        self.speed_factors = tuple(speed_factors) or (1.0,)
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def batches(self, epoch: int) -> list[list[tuple[int, float]]]:
        """This rank's batches of epoch ``epoch``."""
        batches = self.global_batches(epoch)
        if self.world_size > 1 and batches:
            # Ranks take batches in turn; every rank takes the same number so that collectives line
            # up. The last round is filled with the epoch's first batches again, as torch's
            # DistributedSampler pads: none is left out, however few. Global position k is rank
            # k % world_size's batch k // world_size for any world size (how --resume counts).
            total = self.steps(len(batches)) * self.world_size
            batches = [batches[k % len(batches)] for k in range(self.rank, total, self.world_size)]
        return batches

    def steps(self, batches: int) -> int:
        """How many of an epoch's ``batches`` (of all ranks) each rank takes: all as many."""
        return -(-batches // self.world_size)

    def batch_counts(self, epochs: int, start: int = 0) -> list[int]:
        """How many batches (of all ranks) each of epochs ``start`` .. ``epochs - 1`` has. Not the same
        every epoch: sortagrad's sorted first one packs into fewer than shuffled ones, and each epoch's
        jittered lengths pack their own way, so a schedule that counts steps sums them. Each epoch is
        packed to be counted: about 2 us an utterance (0.25 s for 50 epochs of 2,380)."""
        return [len(self.global_batches(epoch)) for epoch in range(start, epochs)]

    def global_batches(self, epoch: int) -> list[list[tuple[int, float]]]:
        """The batches of epoch ``epoch`` of all ranks together, in order (the same for any
        number of them)."""
        rng = random.Random(self.seed * 100_003 + epoch)
        n = len(self.durations)
        speeds = [rng.choice(self.speed_factors) if self.shuffle else 1.0 for _ in range(n)]
        if self.shuffle and not (self.sortagrad and epoch == 0):
            # Sorting on jittered lengths changes which utterances share a batch every
            # epoch while keeping padding low.
            keys = [self.durations[i] / speeds[i] * rng.uniform(0.9, 1.1) for i in range(n)]
        else:
            keys = [self.durations[i] / speeds[i] for i in range(n)]
        order = sorted(range(n), key=lambda i: keys[i])
        batches, current, longest = [], [], 0.0
        for i in order:
            length = self.durations[i] / speeds[i]
            longest_if_added = max(longest, length)
            if current and (longest_if_added * (len(current) + 1) > self.batch_seconds
                            or len(current) >= self.max_batch_size):
                batches.append(current)
                current, longest_if_added = [], length
            current.append((i, speeds[i]))
            longest = longest_if_added
        if current:
            batches.append(current)
        if self.shuffle and not (self.sortagrad and epoch == 0):
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, float]]]:
        yield from self.batches(self.epoch)[self.skip:]

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.skip)


Group = TypeVar("Group")


def padded_batches(groups: Iterable[Group], lengths: Callable[[Group], list[int]],
                   budget: float) -> Iterator[list[Group]]:
    """``groups`` in order, in batches of at most ``budget`` padded samples (their waves' count times
    the longest; a group alone may exceed it). A group's waves (``lengths`` gives theirs: e.g. the
    pieces an utterance is cut into) are never split across batches. ``groups`` is read as the
    batches are taken: a generator can read its audio as it goes."""
    batch: list[Group] = []
    count, longest = 0, 0
    for group in groups:
        sizes = lengths(group)
        wider = max([longest, *sizes])
        if batch and (count + len(sizes)) * wider > budget:
            yield batch
            batch, count, wider = [], 0, max([0, *sizes])
        batch.append(group)
        count, longest = count + len(sizes), wider
    if batch:
        yield batch


class BatchLoader:
    """Iterate a batch sampler, preparing the next batches in background threads.

    Items (audio decode on first use, speed perturbation) load on a small thread pool —
    libsndfile and torch release the GIL — and each batch is collated, and pinned for a
    fast asynchronous copy when training on GPU, while the model works on the previous one.
    """

    def __init__(self, dataset: SpeechDataset, sampler, workers: int = 4, prefetch: int = 2,
                 pin_memory: bool = False):
        self.dataset, self.sampler = dataset, sampler
        self.workers, self.prefetch, self.pin_memory = max(1, workers), max(1, prefetch), pin_memory
        # items left out for their audio (the dataset warned, naming the file), in the batches handed out
        # so far: a checkpoint mid-epoch saves it, and batches prepared ahead are read again on resume
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self.sampler)

    def _get(self, item):
        try:
            return self.dataset[item]
        except AudioError:  # corrupt, or deleted mid-run: this run goes on without it
            return None

    def _load(self, pool, items) -> tuple[Batch | None, int]:
        """The batch (None if no item could be read) and how many of its items could not."""
        loaded = list(pool.map(self._get, items))
        examples = [e for e in loaded if e is not None]
        if not examples:
            return None, len(loaded)
        batch = collate(examples)
        if self.pin_memory:
            batch = batch.map_tensors(torch.Tensor.pin_memory)
        return batch, len(loaded) - len(examples)

    def __iter__(self) -> Iterator[Batch | None]:
        """One batch per sampler batch, in order; None for one whose audio was all unreadable, so
        that every rank of a distributed run takes the same steps and a batch's position (which
        ``--resume`` records) stays its position in the sampler."""
        from concurrent.futures import ThreadPoolExecutor

        def handed_out(future):
            batch, lost = future.result()
            self.unreadable += lost
            return batch

        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as loader:
            pending = []
            for items in self.sampler:
                pending.append(loader.submit(self._load, pool, items))
                if len(pending) > self.prefetch:
                    yield handed_out(pending.pop(0))
            for future in pending:
                yield handed_out(future)
