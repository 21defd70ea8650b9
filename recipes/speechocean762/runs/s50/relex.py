"""A package's first-system lexicon respelled by that system's own tokenizer. A run trained from
scratch learns its own sentencepiece units, so the built-in package's lexicon (spelled in the
built-in's units) drops or respells thousands of its words ('us', 'end', ...); `asr export --lm`
spells the LM's words with the model's tokenizer, and so does this, over the same word list.

    python relex.py PACKAGE
"""
import sys
from pathlib import Path

from asr.lexicon import lexicon_from_words, write_lexicon
from asr.tokenizers import load_tokenizer

package = Path(sys.argv[1])
words = [line.split()[0] for line in (package / "lexicon.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
report = lexicon_from_words(words, load_tokenizer(package / "tokenizer.json"), str(package))
write_lexicon(report.lexicon, package / "lexicon.txt")
print(f"{package}/lexicon.txt: {len(report.lexicon)} of {len(set(words))} words spelled; skipped {len(report.skipped)}")
