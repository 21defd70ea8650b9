"""Synthetic training speech: sentences read by Debian's TTS voices (flite, espeak-ng).

Low-resource recipes have far more text than audio. Reading extra sentences with several
voices, at random speaking rates and pitches, gives the acoustic model more words and spellings
to learn from; whether that helps on real speech is an experiment, measured in the recipe.

Only sentences whose spoken form equals their written form are used: no digits, no symbols
and no abbreviations, because "1863" or "Mr." is read aloud as words that the transcript
would not contain.

The voices are all adults'. A child's shorter vocal tract puts every resonance (formant)
higher, by up to a third at primary-school age, and changing the synthesizer's pitch moves only
F0. ``freq_scale_range`` scales the whole spectrum instead, the way vocal tract length
perturbation does (VTLP, Jaitly & Hinton 2013): the sentence is synthesized ``scale`` times
slower, then played ``scale`` times faster by resampling, so its duration is kept and F0 and
formants rise together.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.atomic import atomic_open
from asr.audio import resample
from asr.data import Utterance, write_manifest
from asr.roman_numerals import expand_roman_numerals, has_roman_numerals
from asr.text import normalize_text, plural

SAMPLE_RATE = 16000
# flite's US/Scottish voices and espeak-ng's American English with a few variants; kal16 is
# the 16 kHz diphone voice (kal is 8 kHz).
DEFAULT_VOICES = ("flite:slt", "flite:awb", "flite:rms", "flite:kal16",
                  "espeak-ng:en-us", "espeak-ng:en-us+f3", "espeak-ng:en-us+m3", "espeak-ng:en+f4")
_ENGINE_PACKAGE = {"flite": "flite", "espeak-ng": "espeak-ng"}
# Punctuation that is not read aloud (and that normalize_text drops or keeps as an apostrophe).
_SILENT_PUNCTUATION = set(" ,.;:?!'\"()-") | set("«»‘’“”„¿¡…–—。，、？！：；")
# Read aloud as something other than their letters: flite and espeak-ng say "mister" for "Mr" with or
# without its period; the ones that are also words ("col", "rev") only with it. "No." is left out: it
# ends "he said no." far more often than it means "number" (and then a digit follows, refused anyway).
# "e.g." and "i.e." are read as "for example" and "that is", or as letters.
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Capt|Lt|Esq|etc|vs)\b|\b(Co|Gen|Col|Rev|Hon)\.|\b(e\.g|i\.e)\.",
                           re.IGNORECASE)


def _english(voices: list["Voice"] | None) -> bool:
    return not voices or all(v.engine == "flite" or re.match(r"en\b", v.name) for v in voices)


class TTSError(RuntimeError):
    pass


@dataclass(frozen=True)
class Voice:
    engine: str  # "flite" or "espeak-ng"
    name: str

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        engine, sep, name = spec.partition(":")
        if not sep or engine not in _ENGINE_PACKAGE or not name:
            raise TTSError(f"voice {spec!r}: expected flite:NAME or espeak-ng:NAME (e.g. flite:slt, "
                           f"espeak-ng:en-us+f3)")
        return cls(engine, name)

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"

    def command(self, text: str, wav: Path, rate: float, pitch: float) -> list[str]:
        """The synthesizer call. ``rate`` > 1 is slower speech; ``pitch`` in [0, 1] low to high."""
        if self.engine == "flite":
            return ["flite", "-voice", self.name, "--setf", f"duration_stretch={rate:.3f}",
                    "--setf", f"int_f0_target_mean={90 + 170 * pitch:.0f}", "-t", text, "-o", str(wav)]
        # "--": a line that starts with a dash ("- Come in, he said") is text, not an option (espeak-ng
        # would print "invalid option", exit 0 and write nothing)
        return ["espeak-ng", "-v", self.name, "-s", f"{175 / rate:.0f}", "-p", f"{20 + 70 * pitch:.0f}",
                "-w", str(wav), "--", text]


def parse_voices(spec: str | None) -> list[Voice]:
    """``--voices``: comma-separated ENGINE:NAME; None (the option left out) means DEFAULT_VOICES."""
    if spec is None:
        return [Voice.parse(v) for v in DEFAULT_VOICES]
    voices = [Voice.parse(v.strip()) for v in spec.split(",") if v.strip()]
    if not voices:
        raise TTSError(f"voices {spec!r}: no voice named; give at least one, e.g. flite:slt, or leave the "
                       "option out for the defaults")
    return voices


def check_engines(voices: list[Voice]) -> None:
    for engine in sorted({v.engine for v in voices}):
        if shutil.which(engine) is None:
            raise TTSError(f"{engine} is not installed (Debian: apt-get install {_ENGINE_PACKAGE[engine]})")


def _flite_voices(listing: str) -> list[str]:
    """The voices compiled into flite, from ``flite -lv``: "Voices available: kal awb ..."."""
    return listing.partition(":")[2].split()


def _espeak_languages(listing: str) -> list[str]:
    """The Language column of ``espeak-ng --voices``."""
    return [row.split()[1] for row in listing.splitlines()[1:] if len(row.split()) > 1]


def _espeak_variants(listing: str) -> list[str]:
    """The variants (the +NAME of en-us+f3) from ``espeak-ng --voices=variant``: files in its !v/ folder."""
    return [word[3:] for row in listing.splitlines()[1:] for word in row.split() if word.startswith("!v/")]


def _unknown_voice(voice: Voice, ask) -> str | None:
    """Why ``voice`` cannot be used, or None if it can. ``ask(*cmd)`` runs an engine's command."""
    if voice.engine == "flite":
        if "/" in voice.name:  # a .flitevox file or URL: flite reports a failed load on its output, rc 0
            probe = ask("flite", "-voice", voice.name, "-t", "a", "-o", "none")
            said = " ".join((probe.stdout + probe.stderr).split())
            if probe.returncode != 0 or "error" in said.lower():
                return f"flite cannot load voice {voice.name} ({said or 'no reason given'})"
            return None
        # flite reads any other unknown name with its default voice, silently: only its list is safe.
        known = _flite_voices(ask("flite", "-lv").stdout)
        if voice.name not in known:
            return f"flite has no voice {voice.name!r} (it has: {', '.join(known) or 'none'})"
        return None
    base, plus, variant = voice.name.partition("+")
    # espeak-ng -v takes a language, a voice file or a voice name; trying it is the one reliable test.
    if not base or ask("espeak-ng", "-q", "-v", base, "a").returncode != 0:
        languages = _espeak_languages(ask("espeak-ng", "--voices").stdout)
        return f"espeak-ng has no voice {base!r} (its languages: {', '.join(languages)}; see espeak-ng --voices)"
    if plus:  # an unknown variant is ignored silently, so check it against the list
        known = _espeak_variants(ask("espeak-ng", "--voices=variant").stdout)
        if variant not in known:
            return (f"espeak-ng has no variant {variant!r} (variants, case-sensitive: {', '.join(known)}; "
                    "see espeak-ng --voices=variant)")
    return None


def check_voices(voices: list[Voice]) -> None:
    """Refuse, before anything is synthesized, a voice the engine would reject on every sentence
    or, worse, silently replace by its default while the manifest names the one asked for."""
    answers: dict[tuple[str, ...], subprocess.CompletedProcess] = {}

    def ask(*cmd: str) -> subprocess.CompletedProcess:  # each listing and each probe once per check
        if cmd not in answers:
            answers[cmd] = subprocess.run(list(cmd), capture_output=True, text=True)
        return answers[cmd]

    problems = [f"voice {v}: {why}" for v in dict.fromkeys(voices) if (why := _unknown_voice(v, ask))]
    if problems:
        raise TTSError("; ".join(problems))


def _voice_can_say(ch: str, engines: set[str]) -> bool:
    """flite's voices are English-only: ASCII letters. espeak-ng reads the letters of any script
    that normalize_text keeps (its voices are picked per language)."""
    if ch in _SILENT_PUNCTUATION:
        return True
    if "flite" in engines:
        return ch.isascii() and ch.isalpha()
    return unicodedata.category(ch)[0] in "LM"


def unspeakable_reason(sentence: str, min_words: int, max_words: int, engines=frozenset({"flite"})) -> str | None:
    """Why the sentence would not read aloud exactly as its normalized text by every engine in
    ``engines``, within the length; None if it would. The reason is a category ("characters the
    voices cannot speak: é"), so that a summary can count lines per reason."""
    engines = set(engines)
    odd = sorted({ch for ch in sentence if not _voice_can_say(ch, engines)})
    if odd:
        named = " ".join(ch if ch.isprintable() and not ch.isspace() else repr(ch) for ch in odd[:10])
        return f"characters the voices cannot speak as written: {named}"
    if _ABBREVIATION.search(sentence):
        return "abbreviations (read as other words)"
    if has_roman_numerals(sentence):  # select_sentences spells them first, for English voices
        return "roman numerals (read as numbers)"
    if re.search(r"\b[A-Z]{2,}\b", sentence):  # acronyms are spelled out letter by letter
        return "acronyms (spelled out letter by letter; all-capitals text reads as acronyms, so give mixed case)"
    if not min_words <= len(normalize_text(sentence).split()) <= max_words:
        return f"not {min_words}-{max_words} words long"
    return None


def speakable(sentence: str, min_words: int, max_words: int, engines=frozenset({"flite"})) -> bool:
    """True if the sentence reads aloud exactly as its normalized text, within the length."""
    return unspeakable_reason(sentence, min_words, max_words, engines) is None


def select_sentences(lines: list[str], n: int, min_words: int = 3, max_words: int = 14,
                     seed: int = 0, voices: list[Voice] | None = None, rejected: list[str] | None = None) -> list[str]:
    """``n`` distinct speakable sentences, drawn at random; each must suit every voice (None: flite's,
    English-only). ``rejected``, if given, gets the reason for each line left out (see describe_rejected)."""
    if not 1 <= min_words <= max_words:
        raise TTSError(f"sentences of {min_words} to {max_words} words: expected 1 <= min words <= max words")
    engines = {v.engine for v in voices} if voices else {"flite"}
    english = _english(voices)
    seen, candidates = set(), []
    for line in lines:
        # (a UTF-8 file saved by Windows tools starts with a byte order mark, which is no character to read)
        line = " ".join(line.replace("\ufeff", " ").split())
        if english:  # as read aloud: "Chapter V" -> "Chapter five"
            line = expand_roman_numerals(line)
        key = normalize_text(line)
        if not line or key in seen:
            continue
        if (why := unspeakable_reason(line, min_words, max_words, engines)) is not None:
            if rejected is not None:
                rejected.append(why)
            continue
        seen.add(key)
        candidates.append(line)
    random.Random(seed).shuffle(candidates)
    return candidates[:n]


def describe_rejected(reasons: list[str]) -> str:
    """"5 lines (characters the voices cannot speak as written: à é), 2 lines (not 3-14 words long)": the
    lines left out, counted per kind of reason, the characters of all of them together."""
    counts: dict[str, int] = {}
    chars: dict[str, set[str]] = {}
    for why in reasons:
        kind, _, detail = why.partition(": ")
        counts[kind] = counts.get(kind, 0) + 1
        chars.setdefault(kind, set()).update(detail.split())
    parts = []
    for kind, n in sorted(counts.items(), key=lambda item: -item[1]):
        shown = sorted(chars[kind])
        detail = f": {' '.join(shown[:20])}{' ...' if len(shown) > 20 else ''}" if shown else ""
        parts.append(f"{plural(n, 'line')} ({kind}{detail})")
    return ", ".join(parts)


def synthesize_one(voice: Voice, text: str, out: Path, rate: float, pitch: float, noise_db: float,
                   rng: np.random.Generator, freq_scale: float = 1.0) -> float:
    """Read ``text`` into ``out`` (16 kHz FLAC) with a little white noise; returns seconds.

    ``freq_scale`` > 1 raises every frequency by that factor at the same duration (module docstring).
    """
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "tts.wav"
        proc = subprocess.run(voice.command(text, wav, rate * freq_scale, pitch), capture_output=True, text=True)
        if proc.returncode != 0 or not wav.is_file():
            raise TTSError(f"{voice} failed on {text!r}: {proc.stderr.strip() or 'no audio written'}")
        samples, rate_hz = sf.read(wav, dtype="float32", always_2d=True)
    audio = torch.from_numpy(samples.mean(axis=1))
    if rate_hz != SAMPLE_RATE:
        audio = resample(audio, rate_hz, SAMPLE_RATE)
    if freq_scale != 1.0:  # read as if sampled scale times faster: frequencies x scale, duration / scale
        audio = resample(audio, round(SAMPLE_RATE * freq_scale), SAMPLE_RATE)
    audio = audio.numpy()
    if audio.size == 0 or not np.any(audio):
        raise TTSError(f"{voice} wrote silence for {text!r}")
    # Synthetic audio has digital silence between words; real recordings never do.
    signal_power = float(np.mean(audio ** 2))
    audio = audio + rng.normal(0, np.sqrt(signal_power / 10 ** (noise_db / 10)), audio.shape).astype(np.float32)
    audio = audio / max(1.0, float(np.abs(audio).max()) / 0.95)
    with atomic_open(out, "wb") as f:  # an interrupted run leaves no half-written FLAC under its name
        sf.write(f, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return len(audio) / SAMPLE_RATE


def synthesize(sentences: list[str], out_dir: str | Path, voices: list[Voice], seed: int = 0,
               rate_range=(0.9, 1.5), snr_range=(20.0, 40.0), freq_scale_range=(1.0, 1.0), jobs: int = 2,
               log=print) -> list[Utterance]:
    """Each sentence read once by a random voice at a random rate, pitch, frequency scale and noise level.

    Writes ``out_dir/audio/tts-NNNNN.flac`` and ``out_dir/train.jsonl``; a sentence the
    synthesizer fails on is reported and skipped. The sentences, the voices, the frequency scale
    range and ``out_dir`` are checked first: a refused run creates nothing. The manifest is written
    (atomically) only if some sentence was synthesized: an empty one would pass for a finished
    job with `make` (recipes keep it .PRECIOUS). A rerun into the same ``out_dir`` synthesizes
    every sentence again, and removes the earlier manifest before it starts: stopped midway, it
    leaves no manifest rather than one that names overwritten audio. Rates above 1 are slower
    than the voice's default: the learners in L2 corpora read slowly.
    """
    if not sentences:
        raise TTSError("no sentences to synthesize")
    lo, hi = freq_scale_range
    if not 0.5 <= lo <= hi <= 2.0:
        raise TTSError(f"frequency scale range {lo:g}-{hi:g}: expected 0.5 <= low <= high <= 2")
    if not voices:
        raise TTSError("no voices given: name at least one, e.g. flite:slt")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TTSError(f"{out_dir}: exists and is not a directory; give a new or existing directory for the output")
    check_engines(voices)
    check_voices(voices)
    new_dirs = [d for d in (out_dir, out_dir / "audio") if not d.exists()]
    try:
        (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TTSError(f"{out_dir / 'audio'}: cannot create the output folder ({e.strerror or e})") from None
    # A manifest of an earlier run names the audio files that this one overwrites: were this run
    # stopped, it would pair that run's sentences with this run's audio. It goes now, and the new
    # one is written at the end (every file is synthesized again: the same seed gives the same audio).
    try:
        (out_dir / "train.jsonl").unlink(missing_ok=True)
    except OSError as e:
        raise TTSError(f"{out_dir / 'train.jsonl'}: cannot replace the earlier manifest ({e.strerror or e})") from None
    rng = random.Random(seed)
    plans = [(i, text, rng.choice(voices), rng.uniform(*rate_range), rng.random(), rng.uniform(*snr_range))
             for i, text in enumerate(sentences)]
    # A stream of its own, so that the default (1, 1) leaves every other draw, and the audio, as before.
    scale_rng = random.Random(f"freq-scale-{seed}")
    # Hundredths keep the resampling ratio small (16000 * scale : 16000).
    scales = [round(scale_rng.uniform(lo, hi), 2) if hi > lo else lo for _ in plans]

    def run(plan):
        i, text, voice, rate, pitch, snr = plan
        path = out_dir / "audio" / f"tts-{i:05d}.flac"
        try:
            seconds = synthesize_one(voice, text, path, rate, pitch, snr, np.random.default_rng(seed * 100003 + i),
                                     scales[i])
        except (TTSError, OSError, RuntimeError) as e:
            log(f"skipped sentence {i}: {e}")
            return None
        return Utterance(str(path.resolve()), round(seconds, 3), normalize_text(text), speaker=str(voice),
                         id=f"tts-{i:05d}")

    with ThreadPoolExecutor(max(1, jobs)) as pool:  # the synthesizers are subprocesses
        utterances = [u for u in pool.map(run, plans) if u is not None]
    if not utterances:
        for d in reversed(new_dirs):  # ours, and empty: no audio was written
            d.rmdir()
        raise TTSError(f"none of the {len(plans)} sentences could be synthesized (see above); "
                       f"{out_dir / 'train.jsonl'} not written")
    write_manifest(out_dir / "train.jsonl", utterances)
    return utterances
