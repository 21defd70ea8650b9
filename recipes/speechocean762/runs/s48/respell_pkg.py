"""The built-in package with its phone systems replaced by runs fine-tuned on cmudict-first
spellings (respell.sh): each run's weights in float16, a search lexicon of the package LM's
words (the first system's lexicon, likeliest first) spelled by the run's tokenizer, and the
package system's decoding.yaml. Priors and the rescoring weights are redone by respell.sh.

    python respell_pkg.py PACKAGE OUT RUN2 RUN3 RUN4
"""
import shutil
import sys
from pathlib import Path

from asr.lexicon import lexicon_from_words, write_lexicon
from asr.model_dir import load_model_dir, save_model_dir

package, out, *runs = map(Path, sys.argv[1:])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(package, out)
words = [line.split()[0] for line in (package / "lexicon.txt").read_text().splitlines() if line.strip()]
for n, run in enumerate(runs, start=2):
    system = out / f"system{n}"
    loaded = load_model_dir(run)
    report = lexicon_from_words(words, loaded.tokenizer)
    decoding = (package / system.name / "decoding.yaml").read_text()
    shutil.rmtree(system)
    save_model_dir(system, loaded.config, loaded.model, loaded.tokenizer, half=True,
                   extra_files={"decoding.yaml": decoding})
    write_lexicon(report.lexicon, system / "lexicon.txt")
    print(f"{system}: {len(report.lexicon):,} of {len(words):,} LM words spelled ({len(report.skipped):,} left out)")
