"""The training and evaluation loaders: a seeded shuffle per epoch, shared by 1 and N processes."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from camkit.core.dist import World
from camkit.data import dataset_len
from camkit.train.config import TrainConfig


def make_loader(
    ds: Dataset, cfg: TrainConfig, shuffle: bool, epoch: int = 0, world: World | None = None
) -> DataLoader:
    """The loader of one epoch: a seeded shuffle (the same for a seed and epoch), and under
    torchrun each rank's share of it (:class:`GlobalBatchSampler`, per-rank batch ``cfg.batch_size``)."""
    world = world or World()
    pin = cfg.pin_memory if cfg.pin_memory is not None else torch.cuda.is_available()
    if shuffle:  # one code path for 1 and N processes, so they see the same global batches
        order = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sampler = GlobalBatchSampler(dataset_len(ds), cfg.batch_size, world, order)
        base = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch + 50_000)  # workers' seeds only
        return DataLoader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            generator=base,
            num_workers=cfg.workers,
            pin_memory=pin,
        )
    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers, pin_memory=pin)


class GlobalBatchSampler(torch.utils.data.Sampler[int]):
    """Rank r's share of each *global* batch of ``world.size x batch_size`` images, drawn from
    the same seeded permutation a single process uses: global batch k is perm[k·W·B : (k+1)·W·B]
    and rank r takes its r-th slice of B. DDP averages the ranks' mean gradients, so a step
    sees exactly the images (and gradient) of one single-process step of batch W·B. The last
    global batch is padded by wrapping around, so every rank runs the same number of steps."""

    def __init__(self, n: int, batch_size: int, world: World, generator: torch.Generator) -> None:
        self.n, self.b, self.world, self.gen = n, batch_size, world, generator

    def _order(self) -> list[int]:
        perm = torch.randperm(self.n, generator=self.gen).tolist()
        step = self.b * self.world.size
        if self.world.distributed:
            perm += perm[: (-len(perm)) % step]
        out: list[int] = []
        for k in range(0, len(perm), step):
            out += perm[k + self.world.rank * self.b : k + (self.world.rank + 1) * self.b]
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        if not self.world.distributed:
            return self.n
        return -(-self.n // (self.b * self.world.size)) * self.b
