"""Batches from in-memory tensors by indexing: ~100x cheaper here than a per-item Dataset + collate.

The loader is a plain iterable that Lightning drives like a DataLoader: Lightning calls
``loader.sampler.set_epoch(epoch)`` at every epoch (as for a ``DistributedSampler``), and the
shuffle order is a pure function of ``(seed, epoch)``, so a run resumed from a checkpoint replays
exactly the batches an uninterrupted run would have seen. Sharding across DDP ranks is done here,
so Lightning never replaces the sampler and ``batch_size`` stays the global batch size.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info


class EpochOrder:
    """The order of sample indices at each epoch: a seeded permutation, or identity."""

    def __init__(self, size: int, *, shuffle: bool, seed: int) -> None:
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning's loops at the start of every epoch."""
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=generator)


class TensorBatches:
    """Iterate ``(images, labels)`` batches of this rank's share of each global batch.

    Training (``drop_uneven=False``, ``shard="interleave"``): each global batch of ``batch_size``
    indices is cut into ``world_size`` equal slices, rank ``r`` takes slice ``r``; the last, short
    global batch is cut as evenly as possible. Evaluation (``shard="contiguous"``): each rank takes
    one contiguous block of the (unshuffled) set, with no padding, so every sample is evaluated
    exactly once across ranks.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} does not divide across {world_size} ranks")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.sampler = EpochOrder(len(labels), shuffle=shuffle, seed=seed)
        self.batch_sampler = None  # Lightning inspects DataLoader-like objects for both attributes

    def _shards(self) -> list[torch.Tensor]:
        order = self.sampler.indices()
        if self.sampler.shuffle:  # training: rank r takes slice r of every global batch
            batches = list(torch.split(order, self.batch_size))
            if len(batches[-1]) < self.world_size:  # every rank must step the same number of times
                batches.pop()
            return [torch.tensor_split(batch, self.world_size)[self.rank] for batch in batches]
        block = torch.tensor_split(order, self.world_size)[self.rank]
        return list(torch.split(block, self.batch_size // self.world_size))

    def __len__(self) -> int:
        n = len(self.labels)
        if self.sampler.shuffle:
            return n // self.batch_size + (n % self.batch_size >= self.world_size)
        block = len(range(n)[self.rank :: self.world_size])  # tensor_split's block sizes
        return -(-block // (self.batch_size // self.world_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shards = [index for index in self._shards() if len(index)]
        if self.num_workers == 0:
            for index in shards:
                yield self.images[index], self.labels[index]
            return
        # Workers index in parallel; DataLoader returns their batches round-robin, i.e. in order.
        batches = _WorkerBatches(self.images, self.labels, shards)
        yield from DataLoader(batches, batch_size=None, num_workers=self.num_workers)


class _WorkerBatches(IterableDataset):
    """Worker ``w`` of ``W`` yields batches ``w, w + W, ...``, which DataLoader interleaves."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shards: list[torch.Tensor]):
        self.images, self.labels, self.shards = images, labels, shards

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for index in self.shards[start::step]:
            yield self.images[index], self.labels[index]
