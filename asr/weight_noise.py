"""Weight noise (Graves, Mohamed & Hinton, 2013): a regularizer for recurrent networks trained on
little data, used in their TIMIT BiLSTM-CTC experiments.

At every step the gradient is taken at randomly perturbed weights ``W + e`` with ``e ~ N(0, std^2)``
drawn afresh for each weight matrix, and the update is then applied to the clean ``W``. The
intent is to push the network towards flat regions of the loss, where small changes of its
weights do not change its output, so that it fits a small training set less exactly. Graves et
al. drew the noise once per training sequence, and started from a network already trained
without it; here it is drawn once per batch, and the speechocean762 recipe tried it in the
fine-tuning stage (no gain there: recipes/speechocean762/README.md, XWn1 and XWn3).

Only matrices and convolution kernels are perturbed (the parameters weight decay acts on);
biases and normalization gains are left alone.
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
        """Inside the block the weights carry fresh noise (drawn from torch's global generator,
        so a reseeded step draws the same); on leaving, they are restored exactly."""
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
