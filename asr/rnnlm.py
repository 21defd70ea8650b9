"""A recurrent word language model for n-best rescoring (``asr lm rnn``).

    h(t) = LSTM(E w(t-1), h(t-1)),    P(w(t) | w(1..t-1)) = softmax(W_y h(t) + b_y)

The same recurrence as the acoustic model, over words: it conditions on the whole sentence so
far where the n-gram sees three words, and its embeddings share strength between similar words,
which counts for much when the LM text is small (a few hundred thousand words here). It does not
replace the n-gram in the beam search (flashlight's search needs an n-gram); it rescores the
n-best lists, its word probabilities linearly interpolated with the n-gram's (Mikolov et al.
2011), the interpolation weight chosen by perplexity on dev text (``interpolation_weight``).

The output layer is an adaptive softmax (Grave et al. 2017) once the vocabulary passes 2,000
words: frequent words in a full head, rare ones in smaller clusters, so a CPU epoch takes
minutes. A trained LM is a directory: ``config.yaml``, ``words.txt`` (one per line, by
frequency; ``</s>`` and ``<unk>`` first) and ``model.safetensors`` (float16), no pickle.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.atomic import atomic_dir, occupied
from asr.lm import read_sentences

BOUNDARY, UNKNOWN = "</s>", "<unk>"  # </s> also starts each sentence, as in Mikolov's RNNLM
CUTOFFS = (2000, 6000)  # adaptive softmax clusters: the 2,000 likeliest words, the next 4,000, the rest


class RNNLMError(ValueError):
    pass


@dataclass(frozen=True)
class RNNLMOptions:
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.3
    epochs: int = 6  # at most: with dev text, training stops once halving the rate stops helping
    lr: float = 2e-3
    lr_decay: float = 0.8  # per epoch
    batch_size: int = 32  # sentences
    seed: int = 0
    checks_per_epoch: int = 4  # dev perplexity checks per epoch
    halvings: int = 3  # when dev perplexity rises: back to the best weights at half the rate, this often
    # Words seen fewer times in an epoch's text train <unk> instead (Mikolov's vocabulary cutoff):
    # at 1 nothing does, and a word the LM never saw feeds the next step an untrained embedding.
    min_count: int = 1

    def __post_init__(self):
        if not 0 <= self.dropout < 1:
            raise RNNLMError(f"dropout must be at least 0 and below 1, got {self.dropout}")
        if self.min_count < 1:
            raise RNNLMError(f"the vocabulary's minimum count must be at least 1, got {self.min_count}")
        if self.checks_per_epoch < 1 or self.halvings < 0:
            raise RNNLMError(f"dev checks per epoch must be at least 1 and halvings at least 0 "
                             f"(got {self.checks_per_epoch} and {self.halvings})")


class RecurrentLM(nn.Module):
    def __init__(self, words: Sequence[str], options: RNNLMOptions = RNNLMOptions()):
        super().__init__()
        self.words, self.options = list(words), options
        self.index = {w: i for i, w in enumerate(self.words)}
        if self.words[:2] != [BOUNDARY, UNKNOWN]:
            raise RNNLMError(f"the vocabulary must start with {BOUNDARY} and {UNKNOWN}")
        v, h = len(self.words), options.hidden_size
        self.embedding = nn.Embedding(v, h)
        self.dropout = nn.Dropout(options.dropout)
        self.rnn = nn.LSTM(h, h, options.num_layers, batch_first=True,
                           dropout=options.dropout if options.num_layers > 1 else 0.0)
        cutoffs = [c for c in CUTOFFS if c < v - 1]
        self.output = (nn.AdaptiveLogSoftmaxWithLoss(h, v, cutoffs=cutoffs, div_value=4.0) if cutoffs
                       else nn.Linear(h, v))

    def _batch(self, sentences: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (</s> then the words) and targets (the words then </s>; -100 past the end)."""
        ids = [[self.index.get(w, 1) for w in s] for s in sentences]
        steps = max(len(s) for s in ids) + 1
        x = torch.zeros(len(ids), steps, dtype=torch.long)
        y = torch.full((len(ids), steps), -100, dtype=torch.long)
        for b, s in enumerate(ids):
            x[b, : len(s) + 1] = torch.tensor([0, *s])
            y[b, : len(s) + 1] = torch.tensor([*s, 0])
        return x, y

    def _target_log_probs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """ln P of each target (0 where y is -100)."""
        hidden, _ = self.rnn(self.dropout(self.embedding(x)))
        hidden, keep = self.dropout(hidden), y != -100
        h, targets = hidden[keep], y[keep]
        if isinstance(self.output, nn.Linear):
            picked = self.output(h).log_softmax(-1).gather(1, targets[:, None])[:, 0]
        else:  # only the head and each target's cluster, not all the words
            picked = self.output(h, targets).output
        out = torch.zeros(y.shape, dtype=picked.dtype)
        out[keep] = picked
        return out

    def loss(self, sentences: Sequence[Sequence[str]]) -> torch.Tensor:
        x, y = self._batch(sentences)
        return -self._target_log_probs(x, y).sum() / (y != -100).sum()

    @torch.inference_mode()
    def word_log_probs(self, sentences: Sequence[Sequence[str]], batch_size: int = 128) -> list[np.ndarray]:
        """ln P of each word of each sentence and of its end: len(sentence) + 1 values each.
        A word outside the vocabulary is scored as <unk>."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # batches of like lengths
        out: list[np.ndarray] = [np.zeros(0)] * len(sentences)
        for i in range(0, len(order), batch_size):
            chunk = order[i: i + batch_size]
            lp = self._target_log_probs(*self._batch([sentences[j] for j in chunk])).float().numpy()
            for b, j in enumerate(chunk):
                out[j] = lp[b, : len(sentences[j]) + 1].astype(np.float64)
        self.train(was_training)
        return out

    def known(self, word: str) -> bool:
        return word in self.index and self.index[word] > 1


def perplexity(model: RecurrentLM, sentences: Sequence[Sequence[str]]) -> float:
    """Over the words in the vocabulary and the sentence ends (unknown words left out, as
    ``asr lm perplexity`` does for the n-gram)."""
    if not sentences:  # exp(0 / 1) would read as a perfect fit
        raise RNNLMError("no sentences to score")
    total, count = 0.0, 0
    for s, lp in zip(sentences, model.word_log_probs(sentences)):
        keep = np.array([model.known(w) for w in s] + [True])
        total, count = total - lp[keep].sum(), count + int(keep.sum())
    return math.exp(total / max(count, 1))


def vocabulary(sentences: Sequence[Sequence[str]], min_count: int = 1) -> list[str]:
    """</s>, <unk>, then the words seen at least ``min_count`` times, likeliest first."""
    counts = Counter(w for s in sentences for w in s)
    return [BOUNDARY, UNKNOWN] + sorted((w for w in counts if counts[w] >= min_count), key=lambda w: (-counts[w], w))


def train_rnnlm(texts: Sequence[str | Path], output_dir: str | Path, repeats: Sequence[int] = (),
                dev: Sequence[str | Path] = (), options: RNNLMOptions = RNNLMOptions(),
                log: Callable[[str], None] = print, force: bool = False) -> RecurrentLM:
    """Train on ``texts`` (text files or manifests; the sentences of the i-th seen ``repeats[i]``
    times per epoch, default once: in-domain text weighs more, as in an n-gram mix) and save the
    weights with the lowest ``dev`` perplexity (without dev, the last epoch's) to ``output_dir``.

    With dev text the rate follows "newbob", as Mikolov's RNNLM toolkit does: dev perplexity is
    checked ``checks_per_epoch`` times an epoch; when it rises, training goes back to the best
    weights and halves the rate, and after ``halvings`` halvings it stops. The in-domain text,
    seen many times an epoch, overfits within one or two epochs, so checks between epochs alone
    would miss the best point and a fixed decay would not slow down in time.

    An ``output_dir`` that holds anything is refused before training unless ``force``: it is
    replaced whole (a model directory given by mistake would lose its weights)."""
    out = Path(output_dir)
    if (taken := occupied(out)) and not force:
        raise RNNLMError(f"{out}: {taken}; give a new directory, or force (--force) to replace it and all it holds")
    if repeats and len(repeats) != len(texts):
        raise RNNLMError(f"{len(repeats)} repeat counts for {len(texts)} texts")
    if any(r != int(r) or r < 1 for r in repeats):  # 0 would leave a text out of the LM without a word
        raise RNNLMError(f"repeat counts must be whole numbers of at least 1, got {list(repeats)}")
    corpora = [list(read_sentences([t])) for t in texts]
    for text, sentences in zip(texts, corpora):
        if not sentences:
            raise RNNLMError(f"{text}: no sentences")
    data = [s for n, sentences in zip(repeats or [1] * len(texts), corpora) for s in sentences * int(n)]
    held = list(read_sentences(dev)) if dev else []
    if dev and not held:  # else training would go on as if no dev text were given, keeping the last epoch
        raise RNNLMError(f"{', '.join(str(d) for d in dev)}: no sentences (dev text)")
    # The best weights so far are kept in a hidden sibling, renamed into place when training
    # ends: an interrupted run leaves no partly trained LM that rescoring would take for one.
    with atomic_dir(out) as staged:
        return _fit(data, held, options, log, staged)


def _fit(data: list[list[str]], held: list[list[str]], options: RNNLMOptions, log: Callable[[str], None],
         output_dir: Path) -> RecurrentLM:
    """train_rnnlm's loop: each improvement (each epoch, without ``held`` dev text) is saved to ``output_dir``."""
    torch.set_flush_denormal(True)  # denormal floats slow CPU training many-fold
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    model = RecurrentLM(vocabulary(data, options.min_count), options)  # counted as seen: repeats included
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    starts = range(0, len(data), options.batch_size)
    check_every = math.ceil(len(starts) / options.checks_per_epoch)
    best, best_state, halvings = math.inf, None, 0

    def scale_rate(factor: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] *= factor

    for epoch in range(1, options.epochs + 1):
        start = time.perf_counter()
        rng.shuffle(data)
        model.train()
        for n, i in enumerate(starts, start=1):
            loss = model.loss(data[i: i + options.batch_size])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if not held or not (n % check_every == 0 or n == len(starts)):  # a dev check after this batch?
                continue
            ppl = perplexity(model, held)
            log(f"epoch {epoch} ({n}/{len(starts)} batches, {time.perf_counter() - start:.0f} s): "
                f"lr {optimizer.param_groups[0]['lr']:.2g}, dev perplexity {ppl:.2f}")
            if best_state is None or ppl < best:
                best, best_state = ppl, {k: v.clone() for k, v in model.state_dict().items()}
                save_rnnlm(model, output_dir)
            elif halvings == options.halvings:
                return load_rnnlm(output_dir)  # the saved weights are the best
            else:
                halvings += 1
                model.load_state_dict(best_state)
                scale_rate(0.5)
        scale_rate(options.lr_decay)
        if not held:
            log(f"epoch {epoch}: {len(data)} sentences, {time.perf_counter() - start:.0f} s")
            save_rnnlm(model, output_dir)
    return load_rnnlm(output_dir)


def save_rnnlm(model: RecurrentLM, output_dir: str | Path) -> Path:
    """Write the LM's directory whole (replacing what was there), or not at all."""
    with atomic_dir(output_dir) as out:
        (out / "words.txt").write_text("\n".join(model.words) + "\n", encoding="utf-8")
        (out / "config.yaml").write_text(yaml.safe_dump({"rnnlm": asdict(model.options)}, sort_keys=False),
                                         encoding="utf-8")
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return Path(output_dir)


def load_rnnlm(path: str | Path) -> RecurrentLM:
    path = Path(path)
    try:
        options = RNNLMOptions(**yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))["rnnlm"])
        words = (path / "words.txt").read_text(encoding="utf-8").rstrip("\n").split("\n")  # (edited: no last \n)
        state = load_file(str(path / "model.safetensors"))
    except FileNotFoundError as e:
        raise RNNLMError(f"{path}: not an RNN LM directory ({Path(e.filename).name} is missing; "
                         f"train one with `asr lm rnn`)") from None
    except KeyError:  # no rnnlm section: another kind of model (an acoustic model's config)
        raise RNNLMError(f"{path}: not an RNN LM directory (its config.yaml has no rnnlm section; train one with "
                         "`asr lm rnn`)") from None
    except (yaml.YAMLError, TypeError) as e:
        raise RNNLMError(f"{path / 'config.yaml'}: not a readable RNN LM config ({e})") from None
    except RNNLMError as e:  # an option out of range
        raise RNNLMError(f"{path / 'config.yaml'}: {e}") from None
    except SafetensorError as e:
        raise RNNLMError(f"{path / 'model.safetensors'}: not readable weights ({e})") from None
    try:
        model = RecurrentLM(words, options)
    except (ValueError, TypeError, RuntimeError) as e:  # RNNLMError too: a vocabulary without </s> and <unk>
        # first; torch's own: a 0-unit, negative or fractional size
        raise RNNLMError(f"{path}: config.yaml and words.txt do not make an RNN LM ({e})") from None
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise RNNLMError(f"{path / 'model.safetensors'}: weights do not fit config.yaml and words.txt ({e})") from None
    return model.eval()


def interpolation_weight(ngram: Sequence[np.ndarray], rnn: Sequence[np.ndarray],
                         known: Sequence[np.ndarray] | None = None) -> tuple[float, dict[float, float]]:
    """The RNN LM's share lambda in P = (1 - lambda) P_ngram + lambda P_rnn with the lowest
    perplexity over dev text, given both LMs' per-word ln P (and which words count); a grid in
    steps of 0.05 -> (lambda, {lambda: perplexity})."""
    keep = [np.ones(len(a), bool) for a in ngram] if known is None else known
    a = np.concatenate([np.zeros(0)] + [x[k] for x, k in zip(ngram, keep)])  # (no sentences: none)
    b = np.concatenate([np.zeros(0)] + [x[k] for x, k in zip(rnn, keep)])
    if not len(a):
        raise RNNLMError("no dev words to choose the interpolation weight on")
    table = {}
    for lam in np.round(np.linspace(0, 1, 21), 2):
        table[float(lam)] = float(math.exp(-_mixed(a, b, lam).mean()))
    return min(table, key=table.get), table


def interpolate(ngram: np.ndarray, rnn: np.ndarray, lam: float) -> float:
    """log10 P(sentence) of the interpolated LM, from both LMs' per-word ln P."""
    return float(_mixed(ngram, rnn, lam).sum() / math.log(10))


def _mixed(ngram: np.ndarray, rnn: np.ndarray, lam: float) -> np.ndarray:
    """ln((1 - lam) P_ngram + lam P_rnn) word by word; at lam 0 or 1 one LM alone, exactly."""
    if lam <= 0:
        return ngram
    if lam >= 1:
        return rnn
    return np.logaddexp(np.log1p(-lam) + ngram, np.log(lam) + rnn)
