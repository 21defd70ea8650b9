"""Tiny corpora in the exact layouts of the real ones, built at test time.

The audio is real speech: the shortest speechocean762 clips in ../shared, re-encoded as FLAC
(LibriSpeech), NIST SPHERE (AN4) or 48 kHz MP3 (Common Voice), with their real transcripts.
Without ../shared the clips are sine tones with made-up transcripts, so the format tests still
run (only the end-to-end recipe needs speech to mean anything, and it still runs on tones).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from conftest import SHARED_SO762, _shortest_utterances

_WORDS = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE YES NO").split()


@functools.lru_cache(maxsize=None)
def clips(n: int = 24) -> tuple[tuple[np.ndarray, int, str], ...]:
    """``n`` short utterances: (mono float32 samples, sample rate, UPPER CASE transcript)."""
    if SHARED_SO762.is_dir():
        rows = _shortest_utterances("train", n)
        out = []
        for _, path, text, _, _ in rows:
            samples, rate = sf.read(str(path), dtype="float32")
            out.append((samples, rate, text))
        return tuple(out)
    out = []
    for i in range(n):
        t = np.arange(int(0.6 * 16000)) / 16000
        tone = (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32)
        out.append((tone, 16000, f"{_WORDS[i % len(_WORDS)]} {_WORDS[(3 * i + 1) % len(_WORDS)]}"))
    return tuple(out)


def _resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    return AF.resample(torch.from_numpy(samples), rate, new_rate).numpy()


def make_librispeech(root: Path, subsets: dict[str, int], speakers: int = 4) -> dict[str, list[str]]:
    """``root/LibriSpeech/SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac`` + ``.trans.txt``;
    ``subsets`` maps subset name -> number of utterances. Returns the ids per subset."""
    pool = clips(sum(subsets.values()))
    ids, k = {}, 0
    for s_index, (subset, n) in enumerate(subsets.items()):
        ids[subset] = []
        lines: dict[Path, list[str]] = {}
        for i in range(n):
            samples, rate, text = pool[k]
            k += 1
            speaker, chapter = 100 + 10 * s_index + i % speakers, 5000 + s_index
            folder = root / "LibriSpeech" / subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            utt = f"{speaker}-{chapter}-{i:04d}"
            sf.write(str(folder / f"{utt}.flac"), samples, rate)
            lines.setdefault(folder / f"{speaker}-{chapter}.trans.txt", []).append(f"{utt} {text}")
            ids[subset].append(utt)
        for path, rows in lines.items():
            path.write_text("\n".join(rows) + "\n")
    return ids


AN4_TRAIN_SPEAKERS = ("fash", "fbbh", "fcaw", "mgah")
AN4_TEST_SPEAKERS = ("fcmm", "mjgm")


def make_an4(root: Path, n_train: int = 8, n_test: int = 4) -> Path:
    """``root/an4/etc/an4_{train,test}.{transcription,fileids}`` and NIST SPHERE audio in
    ``root/an4/wav/an4{,test}_clstk/SPEAKER/anNNN-SPEAKER-b.sph``."""
    pool = clips(n_train + n_test)
    an4 = root / "an4"
    (an4 / "etc").mkdir(parents=True, exist_ok=True)
    k = 0
    for split, n, folder, speakers in (("train", n_train, "an4_clstk", AN4_TRAIN_SPEAKERS),
                                       ("test", n_test, "an4test_clstk", AN4_TEST_SPEAKERS)):
        trans, fileids = [], []
        for i in range(n):
            samples, rate, text = pool[k]
            k += 1
            speaker = speakers[i % len(speakers)]
            source = f"an{200 + k}-{speaker}-b"
            rel = f"{folder}/{speaker}/{source}"
            (an4 / "wav" / folder / speaker).mkdir(parents=True, exist_ok=True)
            sf.write(str(an4 / "wav" / f"{rel}.sph"), _resample(samples, rate, 16000), 16000,
                     format="NIST", subtype="PCM_16")
            trans.append(f"<s> {text} </s> ({source})")
            fileids.append(rel)
        (an4 / "etc" / f"an4_{split}.transcription").write_text("\n".join(trans) + "\n")
        (an4 / "etc" / f"an4_{split}.fileids").write_text("\n".join(fileids) + "\n")
    return an4


CV_COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents",
              "locale", "segment")


def make_commonvoice(root: Path, lang: str = "en", splits=(("train", 6), ("dev", 3), ("test", 3)),
                     texts: list[str] | None = None, speakers_per_split: int = 2) -> Path:
    """``root/cv-corpus-0.0-test/LANG/clips/common_voice_LANG_N.mp3`` (48 kHz MP3) and
    ``train.tsv``/``dev.tsv``/``test.tsv``/``validated.tsv`` with Common Voice's columns.
    ``texts`` replaces the transcripts (e.g. another alphabet)."""
    total = sum(n for _, n in splits)
    pool = clips(total)
    lang_dir = root / "cv-corpus-0.0-test" / lang
    (lang_dir / "clips").mkdir(parents=True, exist_ok=True)
    validated, k = [], 0
    for s_index, (split, n) in enumerate(splits):
        rows = []
        for i in range(n):
            samples, rate, text = pool[k]
            sentence = texts[k] if texts is not None else text.capitalize() + "."
            name = f"common_voice_{lang}_{1000 + k}.mp3"
            sf.write(str(lang_dir / "clips" / name), _resample(samples, rate, 48000), 48000, format="MP3")
            client = f"{s_index:02d}{i % speakers_per_split:02d}" + "ab" * 30
            rows.append({"client_id": client, "path": name, "sentence": sentence, "up_votes": "2",
                         "down_votes": "0", "age": "", "gender": "", "accents": "", "locale": lang, "segment": ""})
            k += 1
        write_tsv(lang_dir / f"{split}.tsv", rows)
        validated += rows
    write_tsv(lang_dir / "validated.tsv", validated)
    return lang_dir


def write_tsv(path: Path, rows: list[dict], columns=CV_COLUMNS) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None,
                                escapechar=None, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def make_own_folder(root: Path, n: int = 12, speakers: int = 3) -> Path:
    """``root/SPEAKER/uttNN.wav`` with ``root/SPEAKER/uttNN.txt`` beside each."""
    for i, (samples, rate, text) in enumerate(clips(n)):
        folder = root / f"spk{i % speakers}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / f"utt{i:02d}.wav"), samples, rate)
        (folder / f"utt{i:02d}.txt").write_text(text.lower() + "\n")
    return root


def make_own_table(root: Path, n: int = 6, delimiter: str = ",", header: bool = True) -> Path:
    """``root/audio/aNN.flac`` and ``root/metadata.csv`` (or .tsv) of path,text,speaker."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (samples, rate, text) in enumerate(clips(n)):
        sf.write(str(root / "audio" / f"a{i:02d}.flac"), samples, rate)
        rows.append([f"audio/a{i:02d}.flac", text, f"s{i % 2}"])
    table = root / ("metadata.csv" if delimiter == "," else "metadata.tsv")
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        if header:
            writer.writerow(["path", "text", "speaker"])
        writer.writerows(rows)
    return table
