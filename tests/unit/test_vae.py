"""The VAE's math (closed forms, reparameterization), its shapes, and the chapter 2 checkers."""

import math

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch02 import check_gaussian_kl, check_reparameterize
from course_lib.models import VAE, VAEConfig
from course_lib.process.elbo import VAELoss, dequantize, elbo_terms, gaussian_kl, gaussian_nll, reparameterize


@pytest.mark.parametrize("shape", [(4, 4, 8, 8), (2, 3), (1, 2, 5, 5)])
def test_gaussian_kl_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert torch.all(gaussian_kl(torch.zeros(shape), torch.zeros(shape)) == 0)  # q = p


def test_gaussian_nll_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    x, mean, log_s = (torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    expected = -torch.distributions.Normal(mean, log_s.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(x, mean, log_s), expected)
    with pytest.raises(ValueError, match="must have one shape"):
        gaussian_nll(x, mean, log_s[:, :, 0, 0])  # a noise level per channel is not broadcast


def test_dequantize_adds_noise_within_one_bin():
    x = torch.linspace(-1, 1, 256).expand(4, 256)
    noisy = dequantize(x, torch.Generator().manual_seed(0))
    assert torch.all(noisy >= x) and torch.all(noisy < x + 2 / 256)
    assert (noisy - x).mean().item() == pytest.approx(1 / 256, rel=0.05)


def test_reparameterize_has_the_right_moments_and_gradients():
    mu, logvar = torch.full((200_000,), 1.5, requires_grad=True), torch.full((200_000,), math.log(0.25), requires_grad=True)
    z = reparameterize(mu, logvar, torch.randn(200_000, generator=torch.Generator().manual_seed(2)))
    assert abs(z.mean().item() - 1.5) < 0.01 and abs(z.std().item() - 0.5) < 0.01
    z.sum().backward()
    assert torch.all(mu.grad == 1) and logvar.grad.abs().sum() > 0  # gradients flow to both


@pytest.mark.parametrize("mult,side", [((1, 2), 16), ((1, 2, 2), 8), ((1, 2, 2, 2), 4)])
def test_vae_shapes_follow_the_config(mult, side):
    cfg = VAEConfig(base_channels=16, channel_mult=mult, latent_channels=4)
    vae = VAE(cfg)
    mu, logvar = vae.encode(torch.randn(2, 3, 32, 32))
    assert mu.shape == logvar.shape == (2, 4, side, side) == (2, *cfg.latent_shape())
    x_mean, log_s = vae.decode_distribution(mu)
    assert x_mean.shape == log_s.shape == (2, 3, 32, 32)
    torch.testing.assert_close(vae.decode(mu), x_mean)
    assert torch.all(log_s == -2.0)  # the noise level starts at s = e^-2 for every pixel, then learns


def test_vae_rejects_wrong_shapes():
    vae = VAE(VAEConfig(base_channels=16))
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"):
        vae.encode(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expected latents \(B, 4, h, w\)"):
        vae.decode(torch.randn(2, 3, 8, 8))


def test_loss_is_the_negative_elbo_per_dimension_at_beta_1():
    vae = VAE(VAEConfig(base_channels=16))
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.manual_seed(3)
    loss = VAELoss(1.0)(vae, x)
    torch.manual_seed(3)
    terms = elbo_terms(vae, dequantize(x))  # the loss sees the batch dequantized, then samples z
    torch.testing.assert_close(loss, terms.negative_elbo.mean() / (3 * 32 * 32))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        VAELoss(-1.0)


def test_a_few_steps_of_training_lower_the_loss():
    from course_lib.training.loop import TrainConfig, train
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32) * 2 - 1
    vae = VAE(VAEConfig(base_channels=16, channel_mult=(1, 2)))
    before = VAELoss()(vae, x).item()
    train(vae, VAELoss(), iter(lambda: x, None), TrainConfig(steps=30, lr=2e-3, progress=False, ema_decay=0.9))
    assert VAELoss()(vae, x).item() < before - 0.2


def _reparameterize(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps


def _kl(mu, logvar):
    return (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).flatten(1).sum(1)


@pytest.mark.parametrize("checker,solution", [(check_reparameterize, _reparameterize), (check_gaussian_kl, _kl)])
def test_ch02_checkers_pass_the_reference(checker, solution, capsys):
    checker(solution)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("checker,wrong,what", [
    (check_reparameterize, lambda mu, logvar, eps: mu + logvar.exp() * eps, "wrong values"),  # variance, not std
    (check_reparameterize, lambda mu, logvar, eps: mu + 0.5 * logvar * eps, "wrong values"),  # forgot the exp
    (check_gaussian_kl, lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar), "returned shape"),  # no sum
    (check_gaussian_kl, lambda mu, logvar: (0.5 * (mu ** 2 + logvar.exp() - 1 + logvar)).flatten(1).sum(1), "wrong values"),
])
def test_ch02_checkers_fail_plausible_mistakes(checker, wrong, what):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value)
