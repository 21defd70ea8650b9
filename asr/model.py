"""The acoustic model: frontend -> subsampling -> recurrent encoder -> CTC head.

The recurrent network is the textbook one, unrolled over time steps t = 1..T::

    h(t) = f(W_x x(t) + W_h h(t-1) + b_h)        hidden layer, recurrent connection W_h
    y(t) = g(W_y h(t) + b_y)                      output layer, g = log-softmax over tokens

with f = tanh or ReLU (``rnn_tanh``, ``rnn_relu``), or the gated LSTM/GRU cells whose
additive memory keeps gradients alive over many steps. A bidirectional layer runs a second
chain from t = T down to 1 and concatenates both hidden states. Training runs the fused
cuDNN/oneDNN kernels; ``RecurrentLayer.unrolled`` spells the same computation out step by
step with the layer's own weights (the tests check that both agree).
"""

from __future__ import annotations

import torch
from torch import nn

from asr.config import AugmentConfig, FeatureConfig, ModelConfig
from asr.features import Frontend, lengths_to_mask


def resolve_device(name: str | None, setting: str = "device") -> torch.device:
    """"auto" (or None) picks CUDA when present; asking for CUDA without it, or for a CUDA device
    this machine does not have, is an error, as is any other kind (mps, meta: the model runs on
    neither)."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"{setting}={name!r}: not a device (auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{setting}={name} was asked for, but no CUDA device is available")
    if device.type == "cuda" and (device.index or 0) >= (count := torch.cuda.device_count()):
        present = "one CUDA device (cuda:0)" if count == 1 else f"{count} CUDA devices (cuda:0 to cuda:{count - 1})"
        raise RuntimeError(f"{setting}={name} was asked for, but this machine has {present}")
    return device


_RNN_CLASSES = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class ConvSubsampling(nn.Module):
    """DeepSpeech2-style 2-D convolutions over (time, frequency), stride 2 per layer."""

    def __init__(self, in_dim: int, out_dim: int, factor: int, channels: int):
        super().__init__()
        n_layers = max(1, factor.bit_length() - 1)
        stride = 2 if factor > 1 else 1
        self.strides = [stride] * n_layers
        convs, freq, ch = [], in_dim, 1
        for s in self.strides:
            convs.append(nn.Conv2d(ch, channels, kernel_size=3, stride=s, padding=1))
            ch, freq = channels, (freq - 1) // s + 1
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Linear(channels * freq, out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for conv, s in zip(self.convs, self.strides):
            x = torch.relu(conv(x))
            lengths = (lengths - 1) // s + 1
            # Zero the frames past each length so padding cannot leak into the next layer.
            x = x * lengths_to_mask(lengths, x.shape[2])[:, None, :, None]
        B, C, T, F = x.shape
        return self.proj(x.permute(0, 2, 1, 3).reshape(B, T, C * F)), lengths

    def input_frames(self, step: int, clipped: bool = True) -> tuple[int, int]:
        """The first and last input frames (0-based) that output step ``step`` depends on: each
        layer's kernel window traced down through its stride and padding (clipped at frame 0,
        where padding holds no frame)."""
        lo = hi = step
        for conv in reversed(self.convs):  # along time: kernel_size[0], stride[0], padding[0]
            lo = lo * conv.stride[0] - conv.padding[0]
            hi = hi * conv.stride[0] - conv.padding[0] + conv.kernel_size[0] - 1
            lo = max(lo, 0) if clipped else lo
        return lo, hi


class FrameStacking(nn.Module):
    """Concatenate k consecutive frames into one (k times fewer steps), then project."""

    def __init__(self, in_dim: int, out_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.proj = nn.Linear(in_dim * factor, out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        B, T, F = x.shape
        pad = (-T) % self.factor
        x = nn.functional.pad(x, (0, 0, 0, pad))
        x = x.reshape(B, (T + pad) // self.factor, F * self.factor)
        return self.proj(x), (lengths + self.factor - 1) // self.factor

    def input_frames(self, step: int, clipped: bool = True) -> tuple[int, int]:
        """The first and last input frames (0-based) of output step ``step``: its own ``factor``."""
        return step * self.factor, step * self.factor + self.factor - 1


def step_centre(subsampling: ConvSubsampling | FrameStacking) -> float:
    """Where output step k is centred, in input frames: k * factor + this (its window's middle,
    the padding counted as frames: 0 for centred kernels, (factor - 1) / 2 for stacking)."""
    lo, hi = subsampling.input_frames(0, clipped=False)
    return (lo + hi) / 2


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over valid frames only: padding must not shift the statistics.

    A training batch with a single valid frame in all (one short clip, e.g. train.max_batch_size=1
    or the out-of-memory halving down to one) has no batch variance (torch refuses it): that frame
    is normalized with the running statistics, as in evaluation, and leaves them as they are.
    """

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_to_mask(lengths, x.shape[1])
        out = torch.zeros_like(x)
        frames = x[mask]
        if self.training and frames.shape[0] <= 1:
            out[mask] = nn.functional.batch_norm(frames, self.running_mean, self.running_var, self.weight,
                                                 self.bias, training=False, eps=self.eps)
        else:
            out[mask] = super().forward(frames)
        return out


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays where it is."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[2]))


class RecurrentLayer(nn.Module):
    """One recurrent layer (both directions if bidirectional), then normalization and dropout.

    The two directions are two unidirectional networks: ``forward_rnn`` reads t = 1..T and
    ``backward_rnn`` reads each utterance reversed within its own length, so it starts at
    the utterance's last real frame whatever the padding. Both run on plain padded batches,
    which use the fused oneDNN kernels on CPU (2.5x faster than packed sequences here) and
    cuDNN on GPU.
    """

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.cell = cfg.cell
        kwargs = {"nonlinearity": cfg.cell[4:]} if cfg.cell.startswith("rnn_") else {}
        make = lambda: _RNN_CLASSES[cfg.cell](in_dim, cfg.hidden_size, batch_first=True, **kwargs)  # noqa: E731
        self.hidden_size = cfg.hidden_size
        self.forward_rnn = make()
        self.backward_rnn = make() if cfg.bidirectional else None
        self.out_dim = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        if cfg.norm == "layer":
            self.norm = nn.LayerNorm(self.out_dim)
        elif cfg.norm == "batch":
            self.norm = MaskedBatchNorm(self.out_dim)
        else:
            self.norm = None
        self.dropout = nn.Dropout(cfg.dropout)

    def recurrence(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The recurrent part alone: (B, T, in) -> (B, T, out_dim), zero past each length."""
        out, _ = self.forward_rnn(x)  # outputs before t depend only on x[..t]: padding is harmless
        if self.backward_rnn is not None:
            back, _ = self.backward_rnn(reverse_padded(x, lengths))
            out = torch.cat([out, reverse_padded(back, lengths)], dim=-1)
        return out * lengths_to_mask(lengths, x.shape[1])[..., None].to(out.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = self.recurrence(x, lengths)
        if isinstance(self.norm, MaskedBatchNorm):
            out = self.norm(out, lengths)
        elif self.norm is not None:
            out = self.norm(out) * lengths_to_mask(lengths, out.shape[1])[..., None]
        return self.dropout(out)

    @torch.no_grad()
    def unrolled(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrence as an explicit loop over time steps, with the layer's own weights.

        x: (T, in_dim) for one utterance -> (T, out_dim). Slow; for reading and testing.
        """
        directions = [self._unroll(self.forward_rnn, x)]
        if self.backward_rnn is not None:
            directions.append(self._unroll(self.backward_rnn, x.flip(0)).flip(0))
        return torch.cat(directions, dim=-1)

    def _unroll(self, rnn: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
        W_x, W_h = rnn.weight_ih_l0, rnn.weight_hh_l0  # input -> hidden, hidden(t-1) -> hidden(t)
        b_x, b_h = rnn.bias_ih_l0, rnn.bias_hh_l0
        H = self.hidden_size
        h = x.new_zeros(H)
        c = x.new_zeros(H)  # LSTM memory cell
        outputs = []
        for x_t in x:
            if self.cell in ("rnn_tanh", "rnn_relu"):
                f = torch.tanh if self.cell == "rnn_tanh" else torch.relu
                h = f(W_x @ x_t + b_x + W_h @ h + b_h)
            elif self.cell == "lstm":
                i, fg, g, o = (W_x @ x_t + b_x + W_h @ h + b_h).split(H)
                c = torch.sigmoid(fg) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:  # gru
                xr, xz, xn = (W_x @ x_t + b_x).split(H)
                hr, hz, hn = (W_h @ h + b_h).split(H)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                n = torch.tanh(xn + r * hn)
                h = (1 - z) * n + z * h
            outputs.append(h)
        return torch.stack(outputs)


class AcousticModel(nn.Module):
    """Waveforms in, per-frame log-probabilities over the tokenizer's tokens out."""

    def __init__(self, features: FeatureConfig, model: ModelConfig, vocab_size: int,
                 augment: AugmentConfig | None = None):
        super().__init__()
        self.features_cfg, self.cfg, self.vocab_size = features, model, vocab_size
        self.frontend = Frontend(features, augment)
        if model.subsampling == "conv":
            self.subsampling = ConvSubsampling(features.dim, model.hidden_size,
                                               model.subsampling_factor, model.conv_channels)
        else:
            self.subsampling = FrameStacking(features.dim, model.hidden_size, model.subsampling_factor)
        layers, dim = [], model.hidden_size
        for _ in range(model.num_layers):
            layers.append(RecurrentLayer(dim, model))
            dim = layers[-1].out_dim
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(dim, vocab_size)  # W_y, b_y
        self.phone_head, self.phone_layer = None, 0

    @property
    def feature_shift(self) -> float:
        """Seconds between feature frames (the frontend's hop)."""
        return self.features_cfg.hop_length / self.features_cfg.sample_rate

    @property
    def frame_shift(self) -> float:
        """Seconds between output frames (one division: feature_shift * factor can be 1 ulp off)."""
        return self.features_cfg.hop_length * self.cfg.subsampling_factor / self.features_cfg.sample_rate

    @property
    def frame_centre(self) -> float:
        """Seconds from the audio's start to the centre of output frame 0; frame k is centred at
        this + k * frame_shift. Feature frame i is centred on sample i * hop_length (the
        spectrogram's windows are centred), so this is 0 for the convolutions' centred kernels and
        (factor - 1) / 2 feature frames for stacking, whose step k holds frames k * factor onwards."""
        return step_centre(self.subsampling) * self.feature_shift

    def add_phone_head(self, num_phones: int, layer: int) -> None:
        """A training-only output: phone log-probs from recurrent layer ``layer`` (auxiliary
        phone CTC, asr/phones.py). Saved model directories leave it out (``inference_state_dict``)."""
        self.phone_head = nn.Linear(self.layers[layer - 1].out_dim, num_phones)
        self.phone_layer = layer

    def inference_state_dict(self) -> dict:
        """The weights a model directory holds: all but training-only heads."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("phone_head.")}

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor, keep: tuple[int, ...] = ()):
        """Subsampling and the recurrent layers: (output, lengths, {layer k: its output for k in keep})."""
        x, lengths = self.subsampling(feats, lengths)
        kept = {}
        for k, layer in enumerate(self.layers, start=1):
            x = layer(x, lengths)
            if k in keep:
                kept[k] = x
        return x, lengths, kept

    def forward(self, waves: torch.Tensor, wave_lengths: torch.Tensor, inter_layer: int = 0,
                phones: bool = False):
        """(B, samples), (B,) -> log-probs (B, frames, vocab) float32, frame lengths (B,).

        For training, two more outputs on request (else None), after those two:
        ``inter_layer`` = k gives the log-probs that the same head reads from layer k's output
        (intermediate CTC), and ``phones`` the phone head's log-probs (``add_phone_head``).
        """
        feats, lengths = self.frontend(waves, wave_lengths)  # float32 (or 64), whatever the weights'
        # the weights' dtype: a user's model.half() runs (a quantized model's Linear has no .weight tensor)
        feats = feats.to(next((p.dtype for p in self.parameters() if p.is_floating_point()), feats.dtype))
        keep = tuple(k for k in (inter_layer, self.phone_layer if phones else 0) if k)
        x, lengths, kept = self.encode(feats, lengths, keep)
        log_probs = self.head(x).float().log_softmax(dim=-1)
        if not keep:
            return log_probs, lengths
        inter = self.head(kept[inter_layer]).float().log_softmax(dim=-1) if inter_layer else None
        phone = self.phone_head(kept[self.phone_layer]).float().log_softmax(dim=-1) if phones else None
        return log_probs, lengths, inter, phone

    def num_parameters(self) -> int:
        """The parameters a model directory holds (training-only heads not counted)."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("phone_head."))
