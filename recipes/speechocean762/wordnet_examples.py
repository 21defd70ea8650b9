"""WordNet's usage examples as text, one sentence a line: everyday English in short sentences.

WordNet 3.0 (Princeton; Debian's ``wordnet-base`` installs it in /usr/share/wordnet) follows many
glosses with quoted examples ("I can breathe better when the air is clean", "the team is a
unit"). They are 6.4 words long on average, as speechocean762's prompts are (LJ Speech's
sentences: 17), which makes them a text source for language models and synthetic speech
(README.md: the WordNet rows). Examples of fewer than ``--min-words`` words ("intrepid
pioneers") are left out.

    python recipes/speechocean762/wordnet_examples.py /usr/share/wordnet -o data/wordnet_examples.txt
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
_QUOTED = re.compile(r'"([^"]+)"')


def examples(dict_dir: str | Path, min_words: int = 3) -> list[str]:
    """The quoted examples of every synset's gloss in ``dict_dir/data.{noun,verb,adj,adv}``, each
    once, in file order."""
    seen: dict[str, None] = {}
    for pos in PARTS_OF_SPEECH:
        path = Path(dict_dir) / f"data.{pos}"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not a WordNet data file (Debian: apt-get install wordnet-base)")
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # the license header
                continue
            for example in _QUOTED.findall(line.partition(" | ")[2]):
                example = example.strip()
                if len(example.split()) >= min_words:
                    seen.setdefault(example, None)
    return list(seen)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dict_dir", nargs="?", default="/usr/share/wordnet")
    parser.add_argument("--output", "-o", required=True)
    parser.add_argument("--min-words", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        found = examples(args.dict_dir, args.min_words)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("".join(f"{e}\n" for e in found), encoding="utf-8")
    print(f"{args.output}: {len(found)} examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
