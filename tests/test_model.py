"""The acoustic model: shapes, the textbook recurrence, padding independence, model directories."""

import dataclasses

import pytest
import torch
import torch.nn as nn

from asr.config import Config, FeatureConfig, ModelConfig
from asr.data import Batch
from asr.losses import forward_backward
from asr.model import AcousticModel, RecurrentLayer, resolve_device
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


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind,subsampling", [("fbank", "conv"), ("mfcc", "stack"), ("spectrogram", "conv")])
def test_a_model_its_user_casts_to_half_precision_runs_and_gives_the_float32_outputs(dtype, kind, subsampling):
    # model.half() in a notebook: the features are still computed in float32 (quiet bins), then cast
    cfg = dataclasses.replace(small("lstm"), subsampling=subsampling)
    model = AcousticModel(FeatureConfig(kind=kind), cfg, vocab_size=6).eval()
    x, n = waves(0.7, 0.4)
    full, lengths = model(x, n)
    half, half_lengths = model.to(dtype)(x, n)
    assert half.dtype == torch.float32 and torch.equal(lengths, half_lengths)
    torch.testing.assert_close(half, full, atol=0.1, rtol=0)


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
def test_a_model_quantized_to_int8_for_cpu_inference_runs_and_gives_outputs_near_float32():
    # torch's dynamic quantization, the usual way to speed up an LSTM on CPU: its Linear layers
    # have no weight tensor to read a dtype from
    model = AcousticModel(FeatureConfig(), small("lstm"), vocab_size=6).eval()
    x, n = waves(0.7, 0.4)
    full, lengths = model(x, n)
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)
    out, out_lengths = quantized(x, n)
    assert out.dtype == torch.float32 and torch.equal(lengths, out_lengths)
    torch.testing.assert_close(out, full, atol=0.2, rtol=0)


def test_a_model_built_under_a_float64_default_dtype_runs_in_float64():
    # torch.set_default_dtype(torch.float64), as in a scientific notebook, before asr.load_model()
    torch.set_default_dtype(torch.float64)
    try:
        model = AcousticModel(FeatureConfig(), small("gru"), vocab_size=6).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    x, n = waves(0.5)
    log_probs, _ = model(x, n)
    assert model.head.weight.dtype == torch.float64 and torch.isfinite(log_probs).all()


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


class _OutOfMemoryInBackward(torch.autograd.Function):
    """Identity whose backward "runs out of memory" when ``fails(x)``: the layers above it already
    hold the pass's gradients by then, as when cuDNN's backward fails part way."""

    @staticmethod
    def forward(ctx, x, fails):
        ctx.fails = fails(x)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        if ctx.fails:
            raise torch.OutOfMemoryError("simulated")
        return grad, None


def _ctc_batch():
    x, n = waves(0.5, 0.4, 0.3, 0.6, seed=3)
    targets = torch.tensor([[1, 2, 3], [2, 3, 0], [4, 1, 0], [1, 1, 2]])
    return Batch(x, n, targets, torch.tensor([3, 2, 2, 3]), [0, 1, 2, 3])


def _gradients(model, batch, **kwargs):
    """forward_backward's result and every parameter's gradient, starting from none."""
    model.zero_grad(set_to_none=True)
    out = forward_backward(model, batch, 0, torch.amp.GradScaler("cuda", enabled=False), False, torch.device("cpu"),
                           **kwargs)
    return out, [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


def _fail_backward_when(model, monkeypatch, fails):
    """The model's backward fails below the recurrent layers (above the convolutions) when ``fails``
    of the subsampled batch (B, T, dim)."""
    real = model.subsampling.forward

    def subsampling(feats, lengths):
        x, lengths = real(feats, lengths)
        return _OutOfMemoryInBackward.apply(x, fails), lengths

    monkeypatch.setattr(model.subsampling, "forward", subsampling)


def test_a_batch_that_runs_out_of_memory_in_backward_is_split_and_gives_the_same_gradient(monkeypatch):
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), small("gru"), vocab_size=5).eval()
    batch = _ctc_batch()
    whole, expected = _gradients(model, batch)
    _fail_backward_when(model, monkeypatch, lambda x: x.shape[0] > 2)
    split, got = _gradients(model, batch)
    assert split[1] == whole[1] == 4 and split[0] == pytest.approx(whole[0], rel=1e-5)
    for a, b in zip(got, expected):  # the failed pass adds nothing to the halves' sum
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()))


def test_an_utterance_that_runs_out_of_memory_alone_in_backward_leaves_no_gradient_behind(monkeypatch):
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), small("gru"), vocab_size=5).eval()
    batch = _ctc_batch()
    rest = Batch(batch.waveforms[:3], batch.wave_lengths[:3], batch.targets[:3], batch.target_lengths[:3], [0, 1, 2])
    _, expected = _gradients(model, rest, divisor=4)  # the other three, over the whole batch's size
    longest = int(model(batch.waveforms, batch.wave_lengths)[1].max())  # utterance 3's frames
    _fail_backward_when(model, monkeypatch, lambda x: x.shape[1] == longest)  # any piece holding it
    out, got = _gradients(model, batch)
    assert out[1] == 3
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max()))


@pytest.mark.parametrize("name", ["meta", "mps", "xla"])
def test_a_device_other_than_cpu_or_cuda_is_refused_naming_the_setting(name):
    # else it fails later, e.g. "Cannot copy out of meta tensor; no data!"
    with pytest.raises(RuntimeError, match=rf"^device='{name}': not a device \(auto, cpu, cuda or cuda:N\)$"):
        resolve_device(name)


def test_a_cuda_device_beyond_those_present_is_refused_naming_how_many_there_are(monkeypatch):
    # else CUDA's "invalid device ordinal", asynchronously and with a traceback
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"^train.device=cuda:2 was asked for, but this machine has 2 CUDA "
                                           r"devices \(cuda:0 to cuda:1\)$"):
        resolve_device("cuda:2", setting="train.device")


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


def test_the_batched_frames_needed_matches_each_utterance_alone_whatever_the_padding():
    from asr.data import frames_needed
    from asr.losses import frames_needed_batch

    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([0, 1, 2, 5, 9, 9])
    targets = torch.randint(1, 3, (6, 9), generator=g)  # few labels: many repeats
    targets[0, :] = 2  # padding that repeats the last label must not count
    want = [frames_needed(targets[i, : lengths[i]]) for i in range(6)]
    assert frames_needed_batch(targets, lengths).tolist() == want
    assert frames_needed_batch(targets[:, :0], torch.zeros(6, dtype=torch.long)).tolist() == [0] * 6
