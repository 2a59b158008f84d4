"""torch.distributed under torchrun, with no code change for the user.

``torchrun --nproc_per_node N -m camkit.cli.main train ...`` (or ``extract``) sets RANK,
WORLD_SIZE and LOCAL_RANK; :func:`setup` then joins the process group (nccl on GPUs, gloo on
CPUs) and pins each rank to its GPU. Without torchrun everything is a world of one and no
process group is made.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from camkit.core.errors import OptionError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: str = "auto") -> World:
    """Join the torchrun process group if there is one (idempotent); the world otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and device != "cpu"
        if cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if cuda else "gloo")
        log.info("rank %d of %d (%s)", rank, size, dist.get_backend())
    return World(rank, size, local)


def device_for(world: World, device: str) -> str:
    """Each rank's device: cuda:LOCAL_RANK under torchrun on GPUs, else ``device``."""
    if world.distributed and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{world.local_rank}"
    return device


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_sum(world: World, values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Element-wise sum of ``values`` over the ranks."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(world: World, obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def cleanup(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise OptionError("device", "not a device; use auto, cpu or cuda[:N]", name) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            "device", "CUDA is not available on this machine; use {device}", name, refs={"device": "cpu"}
        )
    return dev
