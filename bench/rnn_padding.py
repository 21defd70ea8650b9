"""Packed sequences vs plain padded batches for one bidirectional recurrent layer.

    python bench/rnn_padding.py [--device cpu|cuda] [--cell lstm] [--batch 48] [--frames 125] [--hidden 256]

Times forward+backward of (a) nn.LSTM(bidirectional) on a PackedSequence and (b) two
unidirectional networks on the padded batch, the backward one on each utterance reversed
within its length (asr.model.RecurrentLayer's way; same outputs as packing). Lengths are
spread over 60-100% of --frames, as in a length-bucketed batch. Prints one JSON line.
"""

import argparse
import json
import time

import torch

from asr.model import reverse_padded

CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}


def timed(fn, device, repeats):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--cell", default="lstm", choices=CELLS)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--frames", type=int, default=125)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(0)
    rnn = CELLS[a.cell]
    bi = rnn(a.hidden, a.hidden, batch_first=True, bidirectional=True).to(device)
    fwd, bwd = (rnn(a.hidden, a.hidden, batch_first=True).to(device) for _ in range(2))
    x = torch.randn(a.batch, a.frames, a.hidden, device=device, requires_grad=True)
    lengths = torch.linspace(0.6 * a.frames, a.frames, a.batch).long().to(device)

    def packed():
        seq = torch.nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = bi(seq)
        torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0].sum().backward()

    def padded():
        out = torch.cat([fwd(x)[0], reverse_padded(bwd(reverse_padded(x, lengths))[0], lengths)], -1)
        out.sum().backward()

    t_packed, t_padded = timed(packed, device, a.repeats), timed(padded, device, a.repeats)
    print(json.dumps({**vars(a), "threads": torch.get_num_threads(), "packed_s": round(t_packed, 4),
                      "padded_s": round(t_padded, 4), "speedup": round(t_packed / t_padded, 2)}))


if __name__ == "__main__":
    main()
