"""Training-time weight perturbations: each step's gradient is taken at perturbed weights, and
on leaving the block the clean weights come back exactly, so the optimizer updates those.

- ``WeightNoise`` (Graves, Mohamed & Hinton, 2013): Gaussian noise ``W + e``, ``e ~ N(0, std^2)``
  drawn afresh for each weight matrix, a regularizer they used for their TIMIT BiLSTM-CTC
  models. The intent is to push the network towards flat regions of the loss, where small
  changes of its weights do not change its output. Graves et al. drew the noise once per
  training sequence, and started from a network already trained without it; here it is drawn
  once per batch. Only matrices and convolution kernels are perturbed (the parameters weight
  decay acts on); biases and normalization gains are left alone.
- ``WeightDrop`` (DropConnect, Wan et al., 2013, on the recurrent matrices as in Merity et al.,
  2018's AWD-LSTM): each hidden-to-hidden matrix ``W_h`` loses a random fraction ``p`` of its
  connections for the whole batch, at every time step alike, the rest scaled by ``1/(1-p)``.
  Ordinary dropout between layers never touches the recurrence ``W_h h(t-1)``; this does, and
  because it changes the weights rather than the activations the fused cuDNN/oneDNN kernels
  still run. The gradient that reaches the clean ``W_h`` is the chain rule through the mask.

Both draw from a generator reseeded at every step, so a resumed run draws the same (``--resume``
stays exact). The speechocean762 recipe tried both without gain (recipes/speechocean762/README.md:
XWn1 and XWn3 for weight noise in the fine-tuning, XWH and XSH for weight drop at 0.25).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch


class WeightNoise:
    def __init__(self, parameters: Iterable[torch.nn.Parameter], std: float):
        if std < 0:
            raise ValueError(f"weight noise std must be >= 0, got {std}")
        self.std = std
        self.parameters = [p for p in parameters if p.ndim > 1]

    def describe(self) -> str:
        n = sum(p.numel() for p in self.parameters)
        return f"Gaussian, std {self.std:g}, on {len(self.parameters)} weight tensors ({n:,} weights)"

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the weights carry fresh noise; on leaving, they are restored exactly."""
        if not self.std:
            yield
            return
        saved = []
        with torch.no_grad():
            for p in self.parameters:
                saved.append(p.detach().clone())
                p.add_(torch.randn_like(p), alpha=self.std)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, clean in zip(self.parameters, saved):
                    p.copy_(clean)


class WeightDrop:
    def __init__(self, named_parameters: Iterable[tuple[str, torch.nn.Parameter]], p: float):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"weight drop probability must be in [0, 1), got {p}")
        self.p = p
        # torch's RNN modules name their hidden(t-1) -> hidden(t) matrices weight_hh_l{k}[_reverse]
        self.parameters = [w for name, w in named_parameters if "weight_hh" in name.rsplit(".", 1)[-1]]

    def describe(self) -> str:
        n = sum(w.numel() for w in self.parameters)
        return f"DropConnect p={self.p:g} on {len(self.parameters)} recurrent matrices W_h ({n:,} weights)"

    @contextmanager
    def applied(self, seed: int | None = None) -> Iterator[None]:
        """Inside the block each W_h is masked and rescaled; on leaving, the clean W_h is restored
        and its gradient (if the block made one) is multiplied by the same mask and scale.

        seed: draw the masks from a generator seeded with it instead of torch's global one. Data-
        parallel training passes the same seed on every process: the gradient is masked after
        the processes have averaged it, so their masks must agree or their weights drift apart.
        """
        if not self.p:
            yield
            return
        generator = None
        if seed is not None and self.parameters:
            generator = torch.Generator(device=self.parameters[0].device)
            generator.manual_seed(seed)
        saved, scales, grads = [], [], []
        with torch.no_grad():
            for w in self.parameters:
                saved.append(w.detach().clone())
                grads.append(None if w.grad is None else w.grad.detach().clone())  # accumulated before
                scale = torch.empty_like(w).bernoulli_(1.0 - self.p, generator=generator).div_(1.0 - self.p)
                scales.append(scale)
                w.mul_(scale)
        try:
            yield
        finally:
            with torch.no_grad():
                for w, clean, scale, before in zip(self.parameters, saved, scales, grads):
                    w.copy_(clean)
                    if w.grad is None:
                        continue
                    # d loss / d W = d loss / d (W * scale) * scale, for what this block added
                    if before is None:
                        w.grad.mul_(scale)
                    else:
                        w.grad.sub_(before).mul_(scale).add_(before)
