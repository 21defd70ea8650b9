"""WER / CER by speaker age group, from `asr evaluate -o HYP.txt` output and the corpus' spk2age.

    python recipes/speechocean762/wer_by_age.py exp/small/test_hyp.txt ../shared/data/speechocean762/test

Prints a markdown table: age group, speakers, utterances, WER, CER.
"""

import argparse
import sys
from pathlib import Path

from asr.corpora import CorpusError, read_kaldi_table
from asr.metrics import cer, wer

GROUPS = ((6, 9), (10, 14), (15, 19), (20, 200))


def read_pairs(path: Path) -> dict[str, dict[str, str]]:
    """{utterance id: {"REF": text, "HYP": text}} from lines `ID<TAB>REF: text` / `ID<TAB>HYP: text`."""
    if not path.is_file():
        sys.exit(f"{path}: not found")
    pairs: dict[str, dict[str, str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            uid, rest = line.split("\t", 1)
            kind, text = rest.split(":", 1)
        except ValueError:
            sys.exit(f"{path}:{n}: expected 'ID<TAB>REF: text' or 'ID<TAB>HYP: text'")
        pairs.setdefault(uid, {})[kind.strip()] = text.strip()
    return pairs


def ages(pairs: dict, split: Path) -> dict[str, tuple[str, int]]:
    """{utterance id: (speaker, age)} from the split's utt2spk and spk2age."""
    utt2spk, _ = read_kaldi_table(split / "utt2spk")
    spk2age, _ = read_kaldi_table(split / "spk2age")
    out = {}
    for uid in pairs:
        speaker = utt2spk.get(uid)
        if speaker is None or not spk2age.get(speaker, "").isdigit():
            sys.exit(f"{split}: no speaker age for utterance {uid} (utt2spk / spk2age)")
        out[uid] = (speaker, int(spk2age[speaker]))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hyp", type=Path, help="REF/HYP lines written by `asr evaluate -o`")
    p.add_argument("split", type=Path, help="the corpus split with utt2spk and spk2age")
    args = p.parse_args(argv)
    pairs = read_pairs(args.hyp)
    try:
        speaker_age = ages(pairs, args.split)
    except CorpusError as e:
        sys.exit(str(e))
    print("| age | speakers | utterances | WER | CER |\n|---|---|---|---|---|")
    for lo, hi in GROUPS:
        ids = [u for u in pairs if lo <= speaker_age[u][1] <= hi]
        if not ids:
            continue
        refs, hyps = [pairs[u]["REF"] for u in ids], [pairs[u].get("HYP", "") for u in ids]
        label = f"{lo}-{hi}" if hi < 200 else f"{lo}+"
        print(f"| {label} | {len({speaker_age[u][0] for u in ids})} | {len(ids)} | "
              f"{100 * wer(refs, hyps):.1f}% | {100 * cer(refs, hyps):.1f}% |")


if __name__ == "__main__":
    main()
