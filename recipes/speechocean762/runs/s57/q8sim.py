"""Session 57: what int8 storage of the weights would cost the built-in package. Copies PKG to OUT with
every weight matrix (2-D or more: the recurrent, input, head, conv and LSTM LM matrices) rounded to
int8 per output row (symmetric, scale = row max |w| / 127) and stored back as float16; vectors
(biases, LayerNorm, the STFT window) stay. `asr evaluate` of OUT then scores what an int8 package
would give, before any loader for it is written.

    python recipes/speechocean762/runs/s57/q8sim.py asr/pretrained/default exp/s57/pkg_q8sim
    python recipes/speechocean762/runs/s57/q8sim.py PKG OUT 32                            # a scale per 32 weights
    python recipes/speechocean762/runs/s57/q8sim.py PKG OUT 0 rnnlm/model.safetensors     # the LSTM LM left in float16
"""
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def q8(w: torch.Tensor) -> torch.Tensor:
    rows = w.float().reshape(w.shape[0], -1)
    if BLOCK and rows.shape[1] % BLOCK == 0:  # one scale per BLOCK weights of a row (llama.cpp's q8_0
        rows = rows.reshape(-1, BLOCK)          # is 32), not per row (the first conv's rows of 9 stay)
    scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
    return ((rows / scale).round().clamp(-127, 127) * scale).reshape(w.shape).to(w.dtype)


src, out = Path(sys.argv[1]), Path(sys.argv[2])
BLOCK = int(sys.argv[3]) if len(sys.argv) > 3 else 0  # 0: one scale per row
SKIP = sys.argv[4:]  # files left as they are, e.g. rnnlm/model.safetensors
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out)
for f in sorted(out.rglob("model.safetensors")):
    if str(f.relative_to(out)) in SKIP:
        continue
    state = load_file(str(f))
    done = {k: q8(v) if v.dim() >= 2 and v.is_floating_point() else v for k, v in state.items()}
    err = max(((done[k].float() - v.float()).abs().max() / v.float().abs().max()).item()
              for k, v in state.items() if v.dim() >= 2)
    save_file(done, str(f), metadata={"format": "pt"})
    n8 = sum(v.numel() for v in state.values() if v.dim() >= 2)
    n = sum(v.numel() for v in state.values())
    print(f"{f.relative_to(out)}: {n8:,} of {n:,} weights rounded to int8; largest error {err:.4f} of a tensor's max")
