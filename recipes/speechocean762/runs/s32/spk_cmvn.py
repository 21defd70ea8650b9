"""Inference-only check: per-speaker mean/variance normalization in place of per-utterance."""
import collections, json, sys, torch
import asr
from asr.data import read_manifest
from asr.evaluate import evaluate
from asr.features import StatsAccumulator
from asr.metrics import word_errors
torch.set_num_threads(2); torch.set_flush_denormal(True)
utts = read_manifest(sys.argv[1])
m = asr.load_model()
by = collections.defaultdict(list)
for u in utts: by[u.speaker].append(u)
rows = []
for spk, us in sorted(by.items()):
    waves = [m.load(u.audio_filepath) for u in us]
    for t in m.systems:
        fe = t.model.frontend
        acc = StatsAccumulator(fe.normalizer.mean.numel())
        with torch.no_grad():
            for w in waves:
                f, l = fe.extractor(w[None], torch.tensor([w.numel()]))
                acc.add(f, l)
        mean, std = acc.result()
        fe.normalizer.mode = "global"; fe.normalizer.set_stats(mean, std)
    ev = evaluate(m, us)
    for t in m.systems: t.model.frontend.normalizer.mode = "utterance"
    rows += ev.utterances
print(word_errors([r.reference for r in rows], [r.hypothesis for r in rows]).rate)
