"""The acoustic model: shapes, the textbook recurrence, padding independence, model directories."""

import dataclasses

import pytest
import torch

from asr.config import Config, FeatureConfig, ModelConfig
from asr.model import AcousticModel, RecurrentLayer
from asr.model_dir import ModelDirError, load_model_dir, save_model_dir
from asr.text import CharTokenizer

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def small(cell="lstm", **kw):
    return ModelConfig(cell=cell, num_layers=2, hidden_size=16, conv_channels=4, dropout=0.0, **kw)


def waves(*seconds, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = [int(s * 16000) for s in seconds]
    x = torch.zeros(len(n), max(n))
    for i, k in enumerate(n):
        x[i, :k] = torch.randn(k, generator=g) * 0.1
    return x, torch.tensor(n)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_output_is_log_probabilities_over_tokens_at_the_subsampled_rate(cell, bidirectional):
    model = AcousticModel(FeatureConfig(), small(cell, bidirectional=bidirectional), vocab_size=7).eval()
    x, n = waves(1.0, 0.5)
    log_probs, lengths = model(x, n)
    frames = n // 160 + 1
    assert lengths.tolist() == ((((frames - 1) // 2) + 1 - 1) // 2 + 1).tolist()  # two stride-2 convs
    assert log_probs.shape == (2, int(lengths.max()), 7)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, log_probs.shape[1]))


@pytest.mark.parametrize("subsampling,factor", [("conv", 2), ("conv", 8), ("stack", 3), ("stack", 1)])
def test_subsampling_divides_the_frame_rate(subsampling, factor):
    cfg = dataclasses.replace(small(), subsampling=subsampling, subsampling_factor=factor)
    model = AcousticModel(FeatureConfig(), cfg, vocab_size=5).eval()
    x, n = waves(2.0)
    _, lengths = model(x, n)
    frames = int(n[0]) // 160 + 1
    assert abs(int(lengths[0]) - frames / factor) <= 1
    assert model.frame_shift == pytest.approx(0.01 * factor)


def test_feature_shift_is_the_frontend_hop_in_seconds_and_an_output_frame_spans_factor_of_them():
    features = FeatureConfig(n_fft=200, hop_length=100, n_mels=40)  # 6.25 ms hops
    model = AcousticModel(features, dataclasses.replace(small(), subsampling="stack", subsampling_factor=3), 5)
    assert model.feature_shift == 0.00625 and model.frame_shift == 0.01875


@pytest.mark.parametrize("cell", CELLS)
def test_fused_kernel_computes_the_textbook_recurrence_unrolled_over_time(cell):
    """h(t) = f(W_x x(t) + W_h h(t-1) + b), both directions, step by step."""
    torch.manual_seed(0)
    layer = RecurrentLayer(5, ModelConfig(cell=cell, hidden_size=6, bidirectional=True, norm="none",
                                          dropout=0.0)).eval()
    x = torch.randn(1, 9, 5)
    fused = layer.recurrence(x, torch.tensor([9]))[0]
    torch.testing.assert_close(fused, layer.unrolled(x[0]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
@pytest.mark.parametrize("subsampling", ["conv", "stack"])
def test_an_utterance_gets_the_same_output_alone_or_padded_in_a_batch(norm, subsampling):
    cfg = dataclasses.replace(small("gru"), norm=norm, subsampling=subsampling)
    model = AcousticModel(FeatureConfig(), cfg, vocab_size=6).eval()
    x, n = waves(0.7, 1.6)
    batched, lengths = model(x, n)
    alone, alone_len = model(x[:1, : n[0]], n[:1])
    assert lengths[0] == alone_len[0]
    torch.testing.assert_close(batched[0, : lengths[0]], alone[0], atol=1e-5, rtol=1e-4)


def test_batch_norm_in_training_normalizes_a_single_valid_frame_with_its_running_statistics():
    # one value per channel has no variance to speak of: torch refuses it, and statistics from it would be noise
    from asr.model import MaskedBatchNorm

    norm = MaskedBatchNorm(4).train()
    norm.running_mean.fill_(0.5)
    norm.running_var.fill_(4.0)
    x = torch.randn(2, 3, 4)
    out = norm(x, torch.tensor([1, 0]))
    torch.testing.assert_close(out[0, 0], (x[0, 0] - 0.5) / (4.0 + norm.eps) ** 0.5)
    assert out[0, 1:].abs().sum() == 0 and out[1].abs().sum() == 0  # padding stays zero
    assert norm.running_mean.eq(0.5).all() and norm.running_var.eq(4.0).all()  # not moved by one frame
    assert int(norm.num_batches_tracked) == 0
    out.sum().backward()  # still trains the gain and bias
    assert norm.weight.grad is not None and norm.bias.grad is not None


def test_batch_norm_in_training_still_uses_the_batch_statistics_of_two_or_more_frames():
    from asr.model import MaskedBatchNorm

    norm = MaskedBatchNorm(4).train()
    x = torch.randn(1, 5, 4)
    out = norm(x, torch.tensor([2]))
    torch.testing.assert_close(out[0, :2].mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert not norm.running_mean.eq(0).all()


def test_a_batch_norm_model_trains_on_a_batch_of_one_utterance_one_output_frame_long():
    # train.max_batch_size=1 and a 30 ms clip, or the GPU out-of-memory halving down to one such clip
    model = AcousticModel(FeatureConfig(), dataclasses.replace(small("lstm"), norm="batch"), vocab_size=6).train()
    x, n = waves(0.03)
    log_probs, lengths = model(x, n)
    assert lengths.tolist() == [1]
    log_probs.sum().backward()
    assert torch.isfinite(log_probs).all()


def test_gradients_reach_every_parameter():
    model = AcousticModel(FeatureConfig(), small("lstm"), vocab_size=6)
    x, n = waves(0.5, 0.4)
    log_probs, _ = model(x, n)
    log_probs.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_intermediate_output_is_the_ctc_head_reading_a_lower_layer():
    model = AcousticModel(FeatureConfig(), small("lstm"), vocab_size=6).eval()
    x, n = waves(0.5, 0.4)
    plain, lengths = model(x, n)
    final, lengths1, top, no_phones = model(x, n, inter_layer=2)  # the top layer: same as the final output
    _, _, lower, _ = model(x, n, inter_layer=1)
    assert no_phones is None
    torch.testing.assert_close(final, plain)
    torch.testing.assert_close(top, plain)
    assert torch.equal(lengths, lengths1) and lower.shape == plain.shape
    assert not torch.allclose(lower, plain)
    torch.testing.assert_close(lower.exp().sum(-1), torch.ones(lower.shape[:2]))


def test_a_phone_head_reads_its_layer_and_stays_out_of_the_saved_weights(tmp_path):
    model = AcousticModel(FeatureConfig(), small("lstm"), vocab_size=6)
    inference_weights = model.state_dict().keys()
    count = model.num_parameters()
    model.add_phone_head(num_phones=5, layer=1)
    x, n = waves(0.5, 0.4)
    log_probs, _, inter, phones = model(x, n, phones=True)
    assert inter is None and phones.shape == (*log_probs.shape[:2], 5)
    torch.testing.assert_close(phones.exp().sum(-1), torch.ones(phones.shape[:2]))
    phones.sum().backward()  # layer 1's head: the layer above it gets no gradient
    assert all(p.grad is None for p in model.layers[1].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.layers[0].parameters())
    assert model.inference_state_dict().keys() == inference_weights
    assert model.num_parameters() == count  # a model directory's parameters, as reported


def _tokenizer():
    return CharTokenizer.build(["hello world"])


def test_model_directory_round_trips_without_pickle(tmp_path):
    cfg = Config(model=small("gru"))
    tok = _tokenizer()
    model = AcousticModel(cfg.features, cfg.model, len(tok)).eval()
    model.frontend.normalizer.set_stats(torch.full((80,), 2.0), torch.full((80,), 3.0))
    save_model_dir(tmp_path / "m", cfg, model, tok)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "cmvn.json", "config.yaml", "model.safetensors", "tokenizer.json"]
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.config == cfg and loaded.tokenizer == tok
    x, n = waves(0.8)
    torch.testing.assert_close(loaded.model(x, n)[0], model(x, n)[0])


def test_half_precision_storage_halves_the_weights_file_and_loads_as_float32(tmp_path):
    cfg = Config(model=small("lstm"))
    tok = _tokenizer()
    model = AcousticModel(cfg.features, cfg.model, len(tok)).eval()
    save_model_dir(tmp_path / "full", cfg, model, tok)
    save_model_dir(tmp_path / "half", cfg, model, tok, half=True)
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    half = (tmp_path / "half" / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    loaded = load_model_dir(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    x, n = waves(0.5)
    torch.testing.assert_close(loaded.model(x, n)[0], model(x, n)[0], atol=2e-2, rtol=0)


def test_saving_over_an_existing_model_directory_replaces_it_whole(tmp_path):
    cfg = Config(model=small("gru"))
    tok = _tokenizer()
    save_model_dir(tmp_path / "m", cfg, AcousticModel(cfg.features, cfg.model, len(tok)), tok,
                   extra_files={"stale.txt": "x"})
    save_model_dir(tmp_path / "m", cfg, AcousticModel(cfg.features, cfg.model, len(tok)), tok)
    assert not (tmp_path / "m" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folders left behind


def test_loading_a_folder_that_is_not_a_model_names_what_is_missing(tmp_path):
    with pytest.raises(ModelDirError, match="not found"):
        load_model_dir(tmp_path / "absent")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.yaml").write_text("model: {}\n")
    with pytest.raises(ModelDirError, match="model.safetensors"):
        load_model_dir(tmp_path / "m")


def test_weights_that_do_not_fit_the_config_are_a_clear_error(tmp_path):
    cfg = Config(model=small("gru"))
    tok = _tokenizer()
    save_model_dir(tmp_path / "m", cfg, AcousticModel(cfg.features, cfg.model, len(tok)), tok)
    (tmp_path / "m" / "config.yaml").write_text("model:\n  cell: gru\n  hidden_size: 32\n")
    with pytest.raises(ModelDirError, match="do not fit"):
        load_model_dir(tmp_path / "m")


def test_corrupt_weights_are_a_clear_error_naming_the_file(tmp_path):
    cfg = Config(model=small("gru"))
    tok = _tokenizer()
    save_model_dir(tmp_path / "m", cfg, AcousticModel(cfg.features, cfg.model, len(tok)), tok)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ModelDirError, match=r"model.safetensors: not readable weights"):
        load_model_dir(tmp_path / "m")
