"""Tune beam search (LM weight, word score, blank penalty, prior scale) on a dev manifest, and store the best with
the model.

The acoustic model runs once over the manifest, on what ``asr evaluate`` runs (silence left out,
long utterances cut at pauses: ``asr.evaluate.readable_batches``); every grid point only re-runs
the search on the kept log-probabilities. ``asr lm tune`` keeps each point in the model's folder as
it is searched, so that a run cut short searches only the rest when run again
(``asr.tune_progress``). Never tune on the test split.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from asr.beam_search import BeamSearchDecoder
from asr.decoding_config import names_file, read_decoding_defaults, write_decoding_defaults
from asr.data import ManifestError, Utterance
from asr.decoding import GreedyDecoder
from asr.evaluate import first_pieces, join_pieces, none_readable, readable_batches
from asr.metrics import word_errors
from asr.model_dir import portable_path
from asr.search_workers import survivors
from asr.text import normalize_text, plural
from asr.transcribe import Transcriber
from asr.tune_progress import GridProgress, grid_key

DEFAULT_LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
DEFAULT_WORD_SCORES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DEFAULT_BLANK_PENALTIES = (0.0,)
DEFAULT_PRIOR_SCALES = (0.0,)


@dataclass
class TuneResult:
    lm_weight: float
    word_score: float
    wer: float
    greedy_wer: float
    blank_penalty: float = 0.0
    prior_scale: float = 0.0
    # (lm_weight, word_score, blank_penalty, prior_scale, wer)
    grid: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    utterances: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PointScore:
    """One grid point's WER as ``tune`` tells it to ``progress``: the point, its place in the grid
    (``number`` of ``points``, from 1), and the time the rest will take (``seconds_left``), estimated
    from the points this run searched: None until it has searched one (points a cut run kept are read
    back, not searched)."""
    lm_weight: float
    word_score: float
    blank_penalty: float
    prior_scale: float
    wer: float
    number: int
    points: int
    seconds_left: float | None = None


@torch.inference_mode()
def model_outputs(transcriber: Transcriber, utterances: Sequence[Utterance], batch_seconds: float = 300.0,
                  paths: list | None = None):
    """-> [(log_probs (B,T,V), lengths, references)] per batch, the skipped (path, reason), and the
    references of silent utterances (never run: their hypothesis is empty, as evaluate's is). A
    long utterance is run in the pieces evaluate cuts it into: rows whose reference is None
    continue the utterance before them (``readable_batches``, as is ``paths``)."""
    skipped, silent = [], []
    batches = [(*transcriber.log_probs(waves), refs) for waves, refs in
               readable_batches(transcriber, list(utterances), batch_seconds, skipped, silent, paths)]
    return batches, skipped, silent


def _hypotheses(decoder, batches, firsts: Sequence[int], dropped: dict[int, str]) -> list[str | None]:
    """Each row's best transcript (normalized, as references: evaluate), None for the rows of an
    utterance in ``dropped`` (by its first row: ``first_pieces``), which are not searched. An
    utterance whose search kills its worker alone is added to it, with the reason."""
    hyps: list[str | None] = []
    for log_probs, lengths, _ in batches:
        rows = range(len(hyps), len(hyps) + len(lengths))
        searched = [b for b, row in enumerate(rows) if firsts[row] not in dropped]
        found = [None] * len(lengths)
        if searched:
            nbests, died = survivors(decoder.decode_nbest, log_probs[searched], lengths[searched])
            for b, nbest in zip(searched, nbests):
                if nbest is None:
                    dropped.setdefault(firsts[rows[b]], died.problem)
                else:
                    found[b] = normalize_text(nbest[0].text)
        hyps += found
    return hyps


def _search_point(decoder, point, batches, firsts, dropped: dict[int, str], kept: GridProgress | None):
    """One grid point's transcripts: kept from a run before, or searched (and then kept)."""
    if kept is not None and point in kept.points:
        return kept.points[point]
    before = set(dropped)
    lm_weight, word_score, penalty, scale = point
    search = decoder.with_options(lm_weight=lm_weight, word_score=word_score, blank_penalty=penalty,
                                  prior_scale=scale)
    try:
        hyps = _hypotheses(search, batches, firsts, dropped)
    finally:
        search.close()
    if kept is not None:
        kept.add(point, hyps, {k: why for k, why in dropped.items() if k not in before})
    return hyps


def _wer(hyps: Sequence[str | None], refs: Sequence[str | None], firsts: Sequence[int], dropped,
         silent: Sequence[str] = ()) -> float:
    """The WER of every utterance not in ``dropped``, a cut one scored whole, as evaluate scores it."""
    kept = [row for row in range(len(refs)) if firsts[row] not in dropped]
    refs, hyps = join_pieces([refs[row] for row in kept], [hyps[row] for row in kept])
    return word_errors(list(silent) + refs, [""] * len(silent) + hyps).rate


def _say(message: str) -> None:
    print(f"asr: {message}", file=sys.stderr, flush=True)  # as the CLI's other messages


def tune(transcriber: Transcriber, decoder: BeamSearchDecoder, utterances: Sequence[Utterance],
         lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS, word_scores: Sequence[float] = DEFAULT_WORD_SCORES,
         blank_penalties: Sequence[float] = DEFAULT_BLANK_PENALTIES, batch_seconds: float = 300.0,
         progress: Callable[[PointScore], None] | None = None,
         prior_scales: Sequence[float] = DEFAULT_PRIOR_SCALES, say: Callable[[str], None] = _say,
         keep_in: str | Path | None = None, files: Sequence[str | Path | None] = ()) -> TuneResult:
    """Grid search; ties go to the smaller LM weight, then the word score nearer 0, then the
    smaller blank penalty, then the smaller prior scale (which needs the decoder's token priors).

    An utterance whose search kills its worker process alone (after twice in its batch:
    ``SearchWorkerDied``) at any point is skipped, with the unreadable ones, and every point is
    scored on the rest. ``progress`` is told each point's WER as it is searched (``PointScore``);
    when an utterance is dropped, ``say`` names it once and ``progress`` is told the points before
    again, without it: the last WER it was told of each point is the grid's.

    ``keep_in`` (the model's folder): each point is kept there as it is searched, and the points a
    run cut short kept are not searched again (``asr.tune_progress``); ``files`` are those the
    search reads (LM, lexicon), which a kept point must have been searched with."""
    start = time.perf_counter()
    # A repeated value would only search the same point again.
    prior_scales, lm_weights, word_scores, blank_penalties = (
        list(dict.fromkeys(g)) for g in (prior_scales, lm_weights, word_scores, blank_penalties))
    paths: list[str] = []
    batches, skipped, silent = model_outputs(transcriber, utterances, batch_seconds, paths)
    if not batches and not silent:
        raise ManifestError(none_readable(len(utterances), skipped, "to tune on"))
    if not batches:  # every point would score the same: the "best" would be the grid's first, stored as tuned
        raise ManifestError(f"no speech to tune on: all {len(silent)} readable utterances are silent "
                            "or steady noise alone")
    refs = [r for b in batches for r in b[2]]
    firsts, dropped = first_pieces(refs), {}  # dropped: first row -> why
    named, speech = set(), sum(r is not None for r in refs)  # dropped ones said; utterances with speech
    greedy = _hypotheses(GreedyDecoder(transcriber.tokenizer), batches, firsts, dropped)
    grid_points = [(w, s, b, p) for p, w, s, b in itertools.product(prior_scales, lm_weights, word_scores,
                                                                    blank_penalties)]
    kept = None if keep_in is None else GridProgress(keep_in, grid_key(batches, refs, decoder, files), len(refs))
    to_search = {p for p in grid_points if kept is None or p not in kept.points}  # the rest: read back
    if before := len(grid_points) - len(to_search):
        say(f"resuming: {before} of {plural(len(grid_points), 'grid point')} were searched before, kept in "
            f"{kept.path} (delete it to search them again)")
        dropped.update(kept.dropped)  # named below, as any dropped utterance is
    for other in kept.others() if kept is not None else ():  # so that a resume that did not is not a mystery
        say(f"note: {other} holds grid points searched with other inputs (model outputs, references, LM or "
            "lexicon file, search settings): not taken; delete it unless a run on those is to resume")
    points, searched = [], False
    timed: list[float] = []  # seconds of each point searched here, for the time left

    def told(number: int, point, hyps) -> PointScore:
        left = None if not timed else (len(to_search) - len(timed)) * sum(timed) / len(timed)
        return PointScore(*point, _wer(hyps, refs, firsts, dropped, silent), number, len(grid_points), left)

    try:
        for point in grid_points:
            began = time.perf_counter()
            points.append((point, _search_point(decoder, point, batches, firsts, dropped, kept)))
            if point in to_search:
                timed.append(time.perf_counter() - began)
            fresh = [k for k in dropped if k not in named]
            again = bool(fresh and progress and len(points) > 1 and len(dropped) < speech)  # (none left: refused below)
            for k in fresh:
                named.add(k)
                say(f"dropped {paths[k]}: its beam search killed its worker process; the grid is scored without it"
                    + (" (the points before are given again)" if again else ""))
            if again:
                for number, (earlier, hyps) in enumerate(points[:-1], 1):
                    progress(told(number, earlier, hyps))
            if progress:
                progress(told(len(points), point, points[-1][1]))
        searched = True
    finally:  # a grid cut short, even at its last point, is resumed by the next run
        if kept is not None:
            kept.close(done=searched)
    if len(dropped) == speech:  # every point would score the same (silence alone)
        first = next(iter(dropped))
        raise ManifestError(f"no speech to tune on: the search of all {plural(len(dropped), 'utterance')} with speech "
                            f"killed its worker process (first: {paths[first]}: {dropped[first]})")
    grid = [(*point, _wer(hyps, refs, firsts, dropped, silent)) for point, hyps in points]
    best = min(grid, key=lambda g: (round(g[4], 9), g[0], abs(g[1]), g[2], g[3]))
    return TuneResult(lm_weight=best[0], word_score=best[1], wer=best[4],
                      greedy_wer=_wer(greedy, refs, firsts, dropped, silent), blank_penalty=best[2],
                      prior_scale=best[3], grid=grid, skipped=skipped + [(paths[k], why) for k, why in dropped.items()],
                      utterances=speech - len(dropped) + len(silent),  # pieces: None
                      seconds=time.perf_counter() - start)


def store(model_dir: str | Path, result: TuneResult, decoder: BeamSearchDecoder, lm: str | Path,
          lexicon: str | Path | None, manifest: str | Path) -> Path:
    """MODEL/decoding.yaml: the settings `--decoder beam` starts from, and where they came from.

    A packaged LM (``lm``/``lexicon`` keys, from ``asr export --lm``) stays packaged: re-tuning
    a package (at another beam, on one's own dev set) must not leave it searching without its LM.
    Tuned with that LM, ``tuned.lm`` names it relative to the directory, so the package can move.
    """
    previous = read_decoding_defaults(model_dir)
    packaged = {k: previous[k] for k in ("lm", "lexicon") if previous.get(k)}
    lexicon_free = lexicon is not None and str(lexicon).lower() == "none"  # a setting, not a file
    tuned = {"lm": str(Path(lm).resolve()),
             "lexicon": "none" if lexicon_free else str(Path(lexicon).resolve()) if lexicon else None}
    if packaged and names_file(model_dir, packaged["lm"], lm):
        tuned["lm"] = packaged["lm"]
        if lexicon and not lexicon_free and "lexicon" in packaged and names_file(model_dir, packaged["lexicon"],
                                                                                  lexicon):
            tuned["lexicon"] = packaged["lexicon"]
        if (previous.get("tuned") or {}).get("source_lm"):
            tuned["source_lm"] = previous["tuned"]["source_lm"]
    return write_decoding_defaults(model_dir, {
        **packaged, "lm_weight": result.lm_weight, "word_score": result.word_score,
        "blank_penalty": result.blank_penalty, **({"prior_scale": result.prior_scale} if result.prior_scale else {}),
        "beam_size": decoder.options.beam_size,
        **({"beam_size_token": decoder.options.beam_size_token} if decoder.options.beam_size_token is not None else {}),
        "beam_threshold": decoder.options.beam_threshold,
        "tuned": {**tuned, "manifest": portable_path(str(manifest)), "wer": round(result.wer, 6),
                  "greedy_wer": round(result.greedy_wer, 6), "utterances": result.utterances}})
