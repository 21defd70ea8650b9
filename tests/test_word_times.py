"""Word times sit on the audio's clock for every subsampling: output frame k is centred on the
audio it hears, found here from the gradient of frame k with respect to the waveform."""

import pytest
import torch

from asr.config import FeatureConfig, ModelConfig
from asr.decoding import Hypothesis
from asr.model import AcousticModel
from asr.results import words_from_hypothesis
from asr.text import CharTokenizer

RATE = 16000
SUBSAMPLINGS = [("conv", 1), ("conv", 2), ("conv", 4), ("conv", 8), ("stack", 1), ("stack", 2), ("stack", 3),
                ("stack", 4)]
TOKENIZER = CharTokenizer.build(["go hello"])


def untrained(subsampling: str, factor: int) -> AcousticModel:
    torch.manual_seed(0)
    cfg = ModelConfig(subsampling=subsampling, subsampling_factor=factor, num_layers=1, hidden_size=8,
                      conv_channels=4, dropout=0.0)
    return AcousticModel(FeatureConfig(), cfg, len(TOKENIZER)).eval()


def heard_centre(model: AcousticModel, wave: torch.Tensor, k: int) -> float:
    """The middle, in seconds, of the samples that output frame k's subsampled vector depends on
    (the recurrent layers are left out: a bidirectional one hears everything)."""
    wave = wave.clone().requires_grad_(True)
    feats, lengths = model.frontend(wave[None], torch.tensor([wave.numel()]))
    out, _ = model.subsampling(feats, lengths)
    grad, = torch.autograd.grad(out[0, k].sum(), wave)
    heard = grad.nonzero().flatten()
    return (int(heard.min()) + int(heard.max())) / 2 / RATE


@pytest.fixture(scope="module")
def noise():
    return torch.randn(int(1.2 * RATE), generator=torch.Generator().manual_seed(0)) * 0.1


@pytest.mark.parametrize("subsampling, factor", SUBSAMPLINGS)
def test_output_frame_k_is_centred_frame_centre_plus_k_frame_shifts_into_the_audio(noise, subsampling, factor):
    model = untrained(subsampling, factor)
    for k in (3, 5):
        # one sample of slack: pre-emphasis reaches one sample further back
        assert model.frame_centre + k * model.frame_shift == pytest.approx(heard_centre(model, noise, k), abs=1 / RATE)


@pytest.mark.parametrize("subsampling, factor", [("conv", 4), ("stack", 1), ("stack", 3), ("stack", 4)])
def test_frame_centre_is_zero_for_conv_and_half_a_stack_less_half_a_feature_frame_for_stacking(subsampling, factor):
    expected = 0.0 if subsampling == "conv" else (factor - 1) / 2 * 0.01  # 10 ms feature frames
    assert untrained(subsampling, factor).frame_centre == pytest.approx(expected)


@pytest.mark.parametrize("subsampling, factor", SUBSAMPLINGS)
def test_a_word_spans_from_its_first_frame_s_centre_to_the_centre_of_the_frame_after_its_last(
        noise, subsampling, factor):
    model, k = untrained(subsampling, factor), 5
    spikes = Hypothesis("go", tuple(TOKENIZER.encode("go")), (k, k + 2), 0.0)  # g at frame k, o two later
    word, = words_from_hypothesis(spikes, TOKENIZER, model.frame_shift, model.frame_centre)
    # times are rounded to the millisecond
    assert word.start == pytest.approx(heard_centre(model, noise, k), abs=0.0005 + 1 / RATE)
    assert word.end == pytest.approx(heard_centre(model, noise, k + 3), abs=0.0005 + 1 / RATE)


def test_word_times_leave_out_the_frame_centre_when_not_given():
    spikes = Hypothesis("go", tuple(TOKENIZER.encode("go")), (5, 7), 0.0)
    word, = words_from_hypothesis(spikes, TOKENIZER, 0.04)
    assert (word.start, word.end) == (0.2, 0.32)
