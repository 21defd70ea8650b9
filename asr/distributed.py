"""Data-parallel training across processes (GPUs, or CPU processes with gloo).

Launch with torchrun, which sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR:

    torchrun --nproc_per_node 4 -m asr.train configs/deepspeech2.yaml train.train_manifest=...
    asr train configs/deepspeech2.yaml --gpus 4 ...        # the same, launched for you (a Ctrl-C then
                                                           # stops every rank, in one line)

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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from asr.config import ConfigError
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
    # ConfigError, not RuntimeError: a user error each rank reports in one line (report_error), not
    # with a traceback per rank
    try:
        device = resolve_device(name, setting="train.device")
    except RuntimeError as e:
        raise ConfigError(str(e)) from None
    if device.type == "cuda" and local_rank is not None:
        if local_rank >= (count := torch.cuda.device_count()):  # else CUDA's "invalid device ordinal"
            procs = int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1))
            raise ConfigError(f"train.device={name}: {procs} processes on this machine but {count} CUDA "
                              f"device(s); give --gpus {count} at most")
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


# The folder where the ranks ``launch`` starts leave their one-line errors, for it to say once.
ERRORS_ENV = "ASR_RANK_ERRORS"


def report_error(message: str) -> None:
    """A user error that ends this process (a missing or bad manifest, a config that cannot train),
    said as asr.cli says one: "asr: ``message``". A rank that ``launch`` started leaves it to the
    launcher instead, which says it once however many ranks met it, without torchrun's traceback."""
    folder = os.environ.get(ERRORS_ENV)
    if folder and "RANK" in os.environ:
        Path(folder, f"rank-{int(os.environ['RANK']):05d}").write_text(message, encoding="utf-8")
    else:
        print(f"asr: {message}", file=sys.stderr, flush=True)


def rank_errors(folder: str | None) -> list[str]:
    """The distinct errors the ranks left in ``folder`` (report_error), in rank order."""
    if not folder or not Path(folder).is_dir():
        return []
    return list(dict.fromkeys(p.read_text(encoding="utf-8") for p in sorted(Path(folder).glob("rank-*"))))


def launch(n_procs: int, argv: list[str]) -> int:
    """Re-run ``asr.train`` under torchrun with ``n_procs`` processes on this machine; returns its
    exit status (2 after a user error, said here once: ``report_error``).

    torchrun runs in a session of its own, so that a stop reaches it once, from here: Ctrl-C
    (SIGINT to the terminal's process group) or SIGTERM to the group would otherwise reach it
    twice, and a second signal interrupts its shutdown of the ranks with a traceback of its own.
    """
    cmd = [sys.executable, "-c", _TORCHRUN, "--standalone", f"--nproc_per_node={n_procs}",
           "--no-python", sys.executable, "-u", "-c", _RANK, *argv]
    with tempfile.TemporaryDirectory(prefix="asr-ranks-") as errors:
        with subprocess.Popen(cmd, start_new_session=True, env={**os.environ, ERRORS_ENV: errors}) as proc:
            status = _wait(proc)
        for message in rank_errors(errors):  # each rank may have met the same one: said once
            print(f"asr: {message}", file=sys.stderr, flush=True)
            status = 2
    return status


def _wait(proc: subprocess.Popen) -> int:
    """torchrun's exit status; a stop while waiting is passed on to it once (``launch``)."""
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (asr.cli raises it as Terminated): passed on as
        # SIGTERM, which torchrun passes on to its ranks (a rank still importing torch ends without
        # a traceback); they leave nothing running on the GPUs, and asr.cli says it in one line,
        # with the exit status of a single-process run
        held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}  # one stop at a time
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)  # torchrun gives its ranks 30 s, then kills them
        except subprocess.TimeoutExpired:
            proc.kill()
        finally:
            for s, handler in held.items():
                signal.signal(s, handler)
        raise


# torchrun and its ranks, run by ``launch``: a stop passed on ends them without a traceback.
_TORCHRUN = "import sys; from asr.distributed import run_torchrun; sys.exit(run_torchrun(sys.argv[1:]))"
_RANK = ("import sys; from asr.distributed import run_rank; from asr.train import main; "
         "sys.exit(run_rank(main, sys.argv[1:]))")


def run_torchrun(args: list[str]) -> int:
    """torchrun with ``args``; stopped by a signal, it exits 128 + the signal, quietly.

    torchrun passes the signal on to its ranks, waits for them (30 s, then kills them) and raises
    SignalException, whose traceback and shutdown warnings would repeat what the launcher says in
    one line. Should the launcher die without passing a stop on (SIGKILL, a closed terminal),
    torchrun gets SIGTERM (Linux), so its ranks do not train on, orphaned.

    A rank that ends on a user error leaves it for the launcher (``report_error``): torchrun's
    ChildFailedError traceback and its log of stopping the other ranks would bury that one line,
    so they are left out then, and torchrun exits 2, as a single process does.
    """
    import logging

    from torch.distributed.elastic.agent.server import api as agent_api
    from torch.distributed.elastic.multiprocessing import api as mp_api
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    errors = os.environ.get(ERRORS_ENV)

    class WhileStopping(logging.Filter):  # the shutdown's warnings are logged while SignalException is handled
        def filter(self, record):  # or once a rank has left a user error (it exited before they are logged)
            return not isinstance(sys.exc_info()[1], SignalException) and not rank_errors(errors)

    for logger in (agent_api.logger, mp_api.logger):
        logger.addFilter(WhileStopping())
    try:
        torchrun_main(args)
    except SignalException as stop:
        return 128 + int(stop.sigval)
    except ChildFailedError:
        if not rank_errors(errors):  # a crash: its traceback (the rank's) and torchrun's summary stand
            raise
        return 2
    return 0


def run_rank(main, argv: list[str]) -> int:
    """One rank: ``main(argv)`` (asr.train's), stopped by the SIGTERM torchrun passes on (or a
    SIGINT) as a single process is: ``finally`` blocks run (a checkpoint being written is not left
    half there), and it exits quietly, 143 (130), as it does when it fails after such a stop; the
    launcher reports the stop. It exits quietly too, 1, when it fails after another rank ended on a
    user error, which the launcher says."""
    stopped_by = []

    def stop(signum, frame):
        stopped_by.append(signum)
        raise KeyboardInterrupt()

    # A stop that lands in a callback (a weakref's, a __del__) cannot raise there: Python reports it as
    # "Exception ignored" and the rank goes on, to fail at its next collective as its peers stop.
    # Both are the stop's doing, and as quiet as it.
    unraisable = sys.unraisablehook
    sys.unraisablehook = lambda info: (None if stopped_by and isinstance(info.exc_value, KeyboardInterrupt)
                                       else unraisable(info))
    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # Ctrl-C, unless ignored: recorded too
        signal.signal(signal.SIGINT, stop)
    try:
        return main(argv)
    except KeyboardInterrupt:
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    except Exception:
        if stopped_by:
            return 128 + stopped_by[0]
        # A rank that left a user error (report_error) has ended: the others fail in their next
        # collective ("Connection closed by peer"), as a consequence the launcher need not show.
        if not rank_errors(os.environ.get(ERRORS_ENV)):
            raise
        return 1
