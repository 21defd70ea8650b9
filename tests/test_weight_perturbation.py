"""Weight noise and weight drop perturb weights inside their block and give them back exactly."""

import pytest
import torch

from asr.config import ConfigError
from asr.config_files import load_config
from asr.weight_perturbation import WeightDrop, WeightNoise


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.LSTM(16, 4))


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_matrices_carry_noise_of_the_given_size_inside_the_block_and_are_restored_exactly_after():
    net = small_net()
    before = snapshot(net)
    noise = WeightNoise(net.parameters(), std=0.1)
    with noise.applied():
        inside = snapshot(net)
    assert snapshot(net).keys() == before.keys()
    for key, value in snapshot(net).items():
        assert torch.equal(value, before[key]), key
    for key in before:
        delta = inside[key] - before[key]
        if before[key].ndim > 1:  # weight matrices: perturbed, about N(0, 0.1^2)
            assert delta.std().item() == pytest.approx(0.1, rel=0.3), key
        else:  # biases and LayerNorm gains: untouched
            assert torch.equal(delta, torch.zeros_like(delta)), key


def test_the_gradient_is_taken_at_the_noisy_weights():
    net = torch.nn.Linear(3, 1, bias=False)
    x = torch.ones(1, 3)
    with WeightNoise(net.parameters(), std=1.0).applied():
        noisy = net.weight.detach().clone()
        net(x).pow(2).sum().backward()
    # d/dW (W x)^2 = 2 (W x) x: computed with the noisy W, not the clean one
    assert torch.allclose(net.weight.grad, 2 * (noisy @ x.T) * x)


def test_the_same_seed_draws_the_same_noise_and_zero_std_changes_nothing():
    net = small_net()
    draws = []
    for _ in range(2):
        torch.manual_seed(7)
        with WeightNoise(net.parameters(), std=0.05).applied():
            draws.append(snapshot(net))
    for key in draws[0]:
        assert torch.equal(draws[0][key], draws[1][key])
    before = snapshot(net)
    with WeightNoise(net.parameters(), std=0.0).applied():
        assert all(torch.equal(v, before[k]) for k, v in snapshot(net).items())


def test_a_negative_std_is_refused_by_the_config_and_the_class():
    with pytest.raises(ConfigError, match="train.weight_noise"):
        load_config("configs/small.yaml", ["train.weight_noise=-0.1"])
    with pytest.raises(ValueError, match="std"):
        WeightNoise(small_net().parameters(), std=-1)


def recurrent_net():
    torch.manual_seed(0)
    return torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True)


def test_weight_drop_masks_only_the_recurrent_matrices_and_restores_them_exactly():
    net = torch.nn.Sequential(torch.nn.Linear(8, 5), recurrent_net())
    before = snapshot(net)
    drop = WeightDrop(net.named_parameters(), p=0.4)
    assert len(drop.parameters) == 4  # W_h of 2 layers x 2 directions
    with drop.applied(seed=1):
        inside = snapshot(net)
    for key, value in snapshot(net).items():
        assert torch.equal(value, before[key]), key
    for key in before:
        if "weight_hh" in key:  # each connection dropped (0) or kept and scaled by 1 / (1 - p)
            kept = inside[key] != 0
            assert torch.allclose(inside[key][kept], before[key][kept] / 0.6)
            assert (~kept).float().mean().item() == pytest.approx(0.4, abs=0.1), key
        else:  # input matrices W_x, biases, the Linear layer: untouched
            assert torch.equal(inside[key], before[key]), key


def test_weight_drop_gradient_is_the_chain_rule_through_the_mask():
    net = recurrent_net()
    x = torch.randn(3, 7, 5)
    drop = WeightDrop(net.named_parameters(), p=0.5)
    with drop.applied(seed=3):
        masked = {k: v.detach().clone() for k, v in net.named_parameters() if "weight_hh" in k}
        net(x)[0].pow(2).sum().backward()
    got = {k: v.grad.clone() for k, v in net.named_parameters() if "weight_hh" in k}
    # the same computation written out: W_h enters the network as W_h * scale
    clean = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
    scales = {k: masked[k] / clean[k].detach() for k in masked}
    used = {k: (v * scales[k] if k in scales else v) for k, v in clean.items()}
    torch.func.functional_call(net, used, (x,))[0].pow(2).sum().backward()
    for k in got:
        assert torch.allclose(got[k], clean[k].grad, atol=1e-6), k
        assert torch.equal(got[k][scales[k] == 0], torch.zeros_like(got[k][scales[k] == 0]))  # dropped: no gradient


def test_weight_drop_keeps_a_gradient_accumulated_before_its_block():
    net = recurrent_net()
    x = torch.randn(2, 4, 5)
    net(x)[0].sum().backward()
    first = {k: v.grad.clone() for k, v in net.named_parameters()}
    with WeightDrop(net.named_parameters(), p=0.3).applied(seed=0):
        masked = {k: v.detach().clone() for k, v in net.named_parameters()}
        net(x)[0].sum().backward()
    net2 = recurrent_net()
    with torch.no_grad():
        for k, v in net2.named_parameters():
            v.copy_(masked[k])
    net2(x)[0].sum().backward()
    for k, v in net.named_parameters():
        added = net2.get_parameter(k).grad
        if "weight_hh" in k:
            added = added * (masked[k] / v.detach())  # the mask and scale of this block
        assert torch.allclose(v.grad, first[k] + added, atol=1e-6), k


def test_weight_drop_same_seed_same_mask_other_seed_other_mask_and_zero_changes_nothing():
    net = recurrent_net()
    draws = []
    for seed in (5, 5, 6):
        with WeightDrop(net.named_parameters(), p=0.3).applied(seed=seed):
            draws.append(net.weight_hh_l0.detach().clone())
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    before = snapshot(net)
    with WeightDrop(net.named_parameters(), p=0.0).applied(seed=5):
        assert all(torch.equal(v, before[k]) for k, v in snapshot(net).items())


def test_a_weight_drop_outside_0_to_1_is_refused_by_the_config_and_the_class():
    for bad in ("-0.1", "1"):
        with pytest.raises(ConfigError, match="train.weight_drop"):
            load_config("configs/small.yaml", [f"train.weight_drop={bad}"])
    with pytest.raises(ValueError, match="weight drop"):
        WeightDrop(recurrent_net().named_parameters(), p=1.0)


def test_a_date_like_seed_trains_with_weight_drop_rather_than_overflow_torch_s_seed(tiny_corpus, tmp_path):
    # the per-step mask seed grows as seed * 1e12: 20240501 went past 64 bits at step 1
    from asr.train import train
    from test_train import tiny_config

    run = train(tiny_config(tiny_corpus, tmp_path / "run", "train.seed=20240501", "train.weight_drop=0.1"),
                stop_at_step=1)
    assert (run / "last" / "model.safetensors").is_file()
