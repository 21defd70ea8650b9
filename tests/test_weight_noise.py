"""Weight noise perturbs the weight matrices inside its block and gives them back exactly."""

import pytest
import torch

from asr.config import ConfigError, load_config
from asr.weight_noise import WeightNoise


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
