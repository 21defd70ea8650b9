"""Dump the built-in package's pooled rescoring candidates (texts, CTC scores) for a manifest."""
import pickle, sys, time, torch
from asr.rescoring_files import load_rescoring
from asr.evaluate import readable_batches
from asr.manifest import read_manifest

manifest, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
combined = load_rescoring("asr/pretrained/default/rescoring.yaml")
utts = list(read_manifest(manifest))
scale = combined.options.prior_scale
rows, refs, skipped, silent = [], [], [], []
t = time.time()
for waves, batch_refs in readable_batches(combined, utts, 300.0, skipped, silent):
    refs += batch_refs
    with torch.inference_mode():
        for c in combined.candidates_at(waves, (scale,))[scale]:
            rows.append((c.texts, c.ctc, c.lm))
    print(len(rows), f"{time.time()-t:.0f}s", flush=True)
pickle.dump({"rows": rows, "refs": refs, "silent": silent, "skipped": skipped, "options": combined.options}, open(out, "wb"))
