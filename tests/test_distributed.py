"""Data-parallel training with the gloo backend on CPU: two processes, one model."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO_ROOT

SCRIPT = '''
import os, sys, torch
import torch.nn.parallel
from asr.config import load_config
from asr.train import train
from asr import distributed

captured = {}
_DDP = torch.nn.parallel.DistributedDataParallel
def capture(module, *args, **kwargs):
    captured["model"] = module
    return _DDP(module, *args, **kwargs)
torch.nn.parallel.DistributedDataParallel = capture

out, stop = sys.argv[1], int(sys.argv[2])
cfg = load_config("configs/small.yaml", sys.argv[3:])
train(cfg, stop_at_step=stop)
torch.save({k: v.detach().clone() for k, v in captured["model"].state_dict().items()},
           os.path.join(out, f"rank{os.environ['RANK']}.pt"))
distributed.teardown()
'''

TINY = ["model.cell=gru", "model.num_layers=1", "model.hidden_size=32", "model.conv_channels=4",
        "train.batch_seconds=10", "train.max_batch_size=4", "train.progress=false", "train.epochs=2"]


def test_two_gloo_processes_train_one_model_and_hold_identical_weights(tiny_corpus, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    args = [f"train.train_manifest={tiny_corpus / 'train.jsonl'}", f"train.valid_manifest={tiny_corpus / 'valid.jsonl'}",
            f"train.output_dir={run}", *TINY]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path), "3", *args]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)
    # rank 0 alone wrote the checkpoint, and it holds the same weights
    saved = load_file(str(run / "last" / "model.safetensors"))
    torch.testing.assert_close(saved, {k: v for k, v in rank0.items() if k in saved}, rtol=0, atol=0)
    state = torch.load(run / "last" / "train_state.pt", weights_only=True)
    assert (state["world_size"], state["step"]) == (2, 3)

    # the run resumes in a single process, from the same point of the epoch
    resumed = subprocess.run([sys.executable, "-m", "asr.train", "configs/small.yaml", *args, "--resume"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                             env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]


@pytest.mark.parametrize("stop, sent", [("Terminated", "SIGTERM"), ("KeyboardInterrupt", "SIGINT")])
def test_stopping_a_multi_process_run_passes_the_signal_on_to_torchrun_and_waits_for_it(monkeypatch, stop, sent):
    import signal

    import asr.distributed as distributed
    from asr.cli import Terminated

    interrupt = Terminated if stop == "Terminated" else KeyboardInterrupt
    seen = []

    class Torchrun:  # stands in for the torchrun process: stopped while the launcher waits for it
        def __init__(self, cmd):
            self.waits = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait(self, timeout=None):
            self.waits += 1
            if self.waits == 1:
                raise interrupt()
            seen.append(("waited", timeout))
            return 0

        def send_signal(self, sig):
            seen.append(signal.Signals(sig).name)

        def kill(self):
            seen.append("killed")

    monkeypatch.setattr(distributed.subprocess, "Popen", Torchrun)
    with pytest.raises(interrupt):
        distributed.launch(2, ["configs/small.yaml"])
    assert seen == [sent, ("waited", 60)]  # passed on, then given time to stop its ranks; never killed
