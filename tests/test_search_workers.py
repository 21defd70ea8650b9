"""The beam-search worker processes end with their parent, however it ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


def alive(pid: int) -> bool:
    """Running, not a zombie that nobody reaped yet (a container's pid 1 may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@linux_only
def test_search_workers_end_when_their_parent_is_killed_outright(tmp_path):
    # SIGKILL (the OOM killer, a batch system after its grace period) leaves no time to stop
    # them: they waited for work forever, orphaned, each holding its copy of the LM.
    script = """
import os, signal, sys, torch
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.text import CharTokenizer
from conftest import ctc_log_probs, spelled_frames
tokenizer = CharTokenizer.build(["the cat sat"])
decoder = BeamSearchDecoder(tokenizer, options=BeamSearchOptions(beam_size=8), workers=2)
lp = ctc_log_probs(tokenizer, spelled_frames("the cat"))
decoder.decode(torch.cat([lp[0]] * 2), torch.cat([lp[1]] * 2))
with open(sys.argv[1], "w") as f:
    f.write(" ".join(str(pid) for pid in decoder._pool._processes))
os.kill(os.getpid(), signal.SIGKILL)
"""
    pids_file = tmp_path / "pids"
    # (no pipes: a surviving worker would hold them open, and run() would wait for it)
    subprocess.run([sys.executable, "-c", script, str(pids_file)], cwd=REPO_ROOT / "tests", timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [int(pid) for pid in pids_file.read_text().split()]
    assert len(workers) == 2
    try:
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in workers:  # left by a failing run: not to outlive the test
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
