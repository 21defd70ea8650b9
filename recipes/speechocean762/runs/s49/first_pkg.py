"""The built-in package with its first system replaced by a fine-tuned run (aux.sh): the run's
weights in float16 under the package's own decoding.yaml, lexicon and other systems. Priors and
the rescoring weights are redone by aux.sh.

    python first_pkg.py PACKAGE OUT RUN
"""
import shutil
import sys
import tempfile
from pathlib import Path

from asr.model_dir import load_model_dir, save_model_dir

package, out, run = map(Path, sys.argv[1:])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(package, out)
loaded = load_model_dir(run)
with tempfile.TemporaryDirectory() as tmp:
    save_model_dir(Path(tmp) / "m", loaded.config, loaded.model, loaded.tokenizer, half=True)
    for f in (Path(tmp) / "m").iterdir():
        shutil.copy2(f, out / f.name)
        print(f"{out / f.name}: from {run}")
