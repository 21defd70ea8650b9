"""score.py on the package's own LSTM, an unknown word fed to it as </s> (a sentence restart) instead of
its untrained <unk>."""
import runpy, sys, torch
import asr.rnnlm as R
orig = R.RecurrentLM._batch


def _batch(self, sentences):
    x, y = orig(self, sentences)
    x = torch.where(x == 1, torch.zeros_like(x), x)  # an unknown word's input: </s>, as a sentence restart
    return x, y


R.RecurrentLM._batch = _batch
sys.argv = ["score.py", "package", "dev"]
runpy.run_path("recipes/speechocean762/runs/rnnlm_unk/score.py", run_name="__main__")
