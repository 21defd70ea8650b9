"""The package's LSTM LM command with 3% of the input words (not the targets) replaced by <unk> while
training: every word stays in the vocabulary and <unk> is trained as a context. Usage: RATE OUT_DIR."""
import sys, torch
import asr.rnnlm as R
P = float(sys.argv[1])


def loss(self, sentences):
    x, y = self._batch(sentences)
    if self.training:
        drop = (torch.rand(x.shape) < P) & (x > 1)
        x = torch.where(drop, torch.ones_like(x), x)
    return -self._target_log_probs(x, y).sum() / (y != -100).sum()


R.RecurrentLM.loss = loss
from asr.cli import main
sys.exit(main(["lm", "rnn", "data/so762/train.jsonl", "../shared/data/text/ljspeech-13100.txt", "--repeat", "10,1",
               "--dev", "data/so762/valid.jsonl", "-o", sys.argv[2], "--threads", "1", "--checks-per-epoch", "1",
               "--halvings", "0"]))
