"""WER / CER by speaker age group, from `asr evaluate -o HYP.txt` output and the corpus' spk2age.

    python recipes/speechocean762/wer_by_age.py exp/small/test_hyp.txt ../shared/data/speechocean762/test

Prints a markdown table: age group, speakers, utterances, WER, CER.
"""

import argparse
import sys
from pathlib import Path

import jiwer

GROUPS = ((6, 9), (10, 14), (15, 19), (20, 200))


def read_pairs(path: Path) -> dict[str, dict[str, str]]:
    """{utterance id: {"REF": text, "HYP": text}} from lines `ID<TAB>REF: text` / `ID<TAB>HYP: text`."""
    pairs: dict[str, dict[str, str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            uid, rest = line.split("\t", 1)
            kind, text = rest.split(":", 1)
        except ValueError:
            sys.exit(f"{path}:{n}: expected 'ID<TAB>REF: text' or 'ID<TAB>HYP: text'")
        pairs.setdefault(uid, {})[kind.strip()] = text.strip()
    return pairs


def kaldi_map(path: Path) -> dict[str, str]:
    if not path.is_file():
        sys.exit(f"{path}: not found")
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hyp", type=Path, help="REF/HYP lines written by `asr evaluate -o`")
    p.add_argument("split", type=Path, help="the corpus split with utt2spk and spk2age")
    args = p.parse_args(argv)
    pairs = read_pairs(args.hyp)
    utt2spk, spk2age = kaldi_map(args.split / "utt2spk"), kaldi_map(args.split / "spk2age")
    print("| age | speakers | utterances | WER | CER |\n|---|---|---|---|---|")
    for lo, hi in GROUPS:
        ids = [u for u in pairs if lo <= int(spk2age[utt2spk[u]].strip()) <= hi]
        if not ids:
            continue
        refs, hyps = [pairs[u]["REF"] for u in ids], [pairs[u].get("HYP", "") for u in ids]
        label = f"{lo}-{hi}" if hi < 200 else f"{lo}+"
        print(f"| {label} | {len({utt2spk[u] for u in ids})} | {len(ids)} | "
              f"{100 * jiwer.wer(refs, hyps):.1f}% | {100 * jiwer.cer(refs, hyps):.1f}% |")


if __name__ == "__main__":
    main()
