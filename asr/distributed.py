"""Data-parallel training across processes (GPUs, or CPU processes with gloo).

Launch with torchrun, which sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR:

    torchrun --nproc_per_node 4 -m asr.train configs/deepspeech2.yaml train.train_manifest=...
    asr train configs/deepspeech2.yaml --gpus 4 ...        # the same, launched for you

Several machines: run the same command on each with
``--nnodes N --node_rank I --rdzv_backend c10d --rdzv_endpoint HOST:PORT`` (HOST = the first
machine's address, reachable from all). Every rank trains on its own shard of the length
buckets; rank 0 alone validates, logs and writes checkpoints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asr.model import resolve_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), _device(device_name, None)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_name, local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local), device


def _device(name: str, local_rank: int | None) -> torch.device:
    device = resolve_device(name, setting="train.device")
    if device.type == "cuda" and local_rank is not None:
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def all_true(flag: bool, d: Dist, device) -> bool:
    """True only if ``flag`` holds on every rank (so all ranks take the same branch)."""
    if not d.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def all_sum(tensor: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def launch(n_procs: int, argv: list[str]) -> int:
    """Re-run ``asr.train`` under torchrun with ``n_procs`` processes on this machine."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n_procs}",
           "-m", "asr.train", *argv]
    with subprocess.Popen(cmd) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt as stop:  # Ctrl-C (torchrun has it too) or SIGTERM (asr.cli raises it as one):
            # passed on, so torchrun stops its ranks and they leave nothing running on the GPUs
            proc.send_signal(signal.SIGTERM if type(stop).__name__ == "Terminated" else signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
