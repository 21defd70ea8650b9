"""Prototype: per-speaker unsupervised adaptation of the LayerNorm gains/biases (LHUC-like)
on first-pass transcripts, then a second pass. Usage:
  python adapt_proto.py MANIFEST FIRST_PASS_RESULTS.json OUT.json [steps] [lr] [systems]
"""
import collections, json, sys, time
import torch
import torch.nn.functional as F
import asr
from asr.data import read_manifest
from asr.evaluate import evaluate
from asr.text import normalize_text

manifest, first, out = sys.argv[1:4]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 10
lr = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-3
which = [int(x) for x in sys.argv[6].split(",")] if len(sys.argv) > 6 else [0, 1, 2]
oracle = "--oracle" in sys.argv
torch.set_num_threads(2)
torch.set_flush_denormal(True)

utts = read_manifest(manifest)
hyp = {u["id"]: u["hypothesis"] for u in json.load(open(first))["utterances"]}
model = asr.load_model()
systems = model.systems
by_spk = collections.defaultdict(list)
for u in utts:
    by_spk[u.speaker].append(u)


def norm_params(m):
    return [p for n, p in m.named_parameters() if ".norm." in n]


def adapt(t, waves, texts):
    m = t.model
    params = norm_params(m)
    saved = [p.detach().clone() for p in params]
    for p in m.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    targets, keep = [], []
    for i, text in enumerate(texts):
        try:
            ids = t.tokenizer.encode(text)
        except ValueError:
            continue
        if ids:
            targets.append(torch.tensor(ids)); keep.append(i)
    if not keep:
        return saved
    ws = [waves[i] for i in keep]
    lengths = torch.tensor([w.numel() for w in ws])
    batch = torch.zeros(len(ws), int(lengths.max()))
    for i, w in enumerate(ws):
        batch[i, : w.numel()] = w
    tl = torch.tensor([len(x) for x in targets])
    tg = torch.cat(targets)
    opt = torch.optim.Adam(params, lr=lr)
    m.eval()
    for s in range(steps):
        with torch.enable_grad():
            lp, ol = m(batch, lengths)
            loss = F.ctc_loss(lp.transpose(0, 1), tg, ol, tl, blank=t.tokenizer.blank_id,
                              reduction="sum", zero_infinity=True) / tl.sum()
            opt.zero_grad(); loss.backward(); opt.step()
        if s in (0, steps - 1):
            print(f"   step {s} loss/token {loss.item():.3f}", file=sys.stderr)
    for p in params:
        p.requires_grad_(False)
    return saved


rows = []
t0 = time.time()
for spk, us in sorted(by_spk.items()):
    waves = [model.load(u.audio_filepath) for u in us]
    texts = [normalize_text(u.text) if oracle else hyp[u.id] for u in us]
    saved_all = []
    for k in which:
        saved_all.append((k, adapt(systems[k], waves, texts)))
    ev = evaluate(model, us)
    for k, saved in saved_all:
        for p, s in zip(norm_params(systems[k].model), saved):
            p.data.copy_(s)
    for r in ev.utterances:
        rows.append({"id": r.id, "speaker": spk, "reference": r.reference, "hypothesis": r.hypothesis})
    print(spk, f"{time.time()-t0:.0f}s", file=sys.stderr)

from asr.metrics import word_errors
we = word_errors([r["reference"] for r in rows], [r["hypothesis"] for r in rows])
print(json.dumps({"wer": we.rate}))
json.dump({"utterances": rows}, open(out, "w"))
