"""Prediction targets eps, x0 and v: conversions, the v target against diffusers, the losses and
the Min-SNR weights."""

import pytest
import torch

from course_lib.process.diffusion import (EpsilonLoss, MinSNRLoss, PredictionLoss, add_noise, eps_to_x0, gather,
                                          min_snr_weight, pred_to_eps, pred_to_x0, signal_to_noise, v_to_eps,
                                          v_to_x0, velocity, x0_error_factor, x0_to_eps)
from course_lib.process.schedules import make_schedule

SHAPES = [(5, 2), (3, 3, 8, 8), (2, 4, 4, 4, 4)]
TOLS = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-3, atol=1e-3)}


def noised(shape, dtype, name="cosine", t_max=980):
    """x0, eps, x_t and alpha_bar (B, 1, ..., 1) at random steps. Steps stop at t_max: beyond it
    alpha_bar -> 0 and eps -> x0 divides by sqrt(alpha_bar) (the cosine schedule's last is ~1e-9)."""
    sch = make_schedule(name, 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    eps = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    t = torch.randint(0, t_max, (shape[0],), generator=g)
    return x0, eps, add_noise(sch, x0, t, eps), gather(sch.alpha_bar, t, x0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conversions_recover_the_true_x0_and_eps(shape, dtype):
    x0, eps, x_t, a = noised(shape, dtype)
    tol = TOLS[dtype]
    v = velocity(x0, eps, a)
    torch.testing.assert_close(eps_to_x0(eps, x_t, a), x0, **tol)
    torch.testing.assert_close(x0_to_eps(x0, x_t, a), eps, **tol)
    torch.testing.assert_close(v_to_x0(v, x_t, a), x0, **tol)
    torch.testing.assert_close(v_to_eps(v, x_t, a), eps, **tol)
    for out in (eps_to_x0(eps, x_t, a), v_to_eps(v, x_t, a), velocity(x0, eps, a)):
        assert out.dtype == dtype and out.shape == shape


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trips_through_every_target(shape, dtype):
    """Any prediction, right or wrong, converts to the other targets and back unchanged."""
    _, _, x_t, a = noised(shape, dtype)
    pred = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    tol = TOLS[dtype]
    torch.testing.assert_close(x0_to_eps(eps_to_x0(pred, x_t, a), x_t, a), pred, **tol)
    torch.testing.assert_close(eps_to_x0(x0_to_eps(pred, x_t, a), x_t, a), pred, **tol)
    torch.testing.assert_close(velocity(v_to_x0(pred, x_t, a), v_to_eps(pred, x_t, a), a), pred, **tol)
    for kind in ("eps", "x0", "v"):
        x0_hat, eps_hat = pred_to_x0(pred, x_t, a, kind), pred_to_eps(pred, x_t, a, kind)
        torch.testing.assert_close(a.sqrt() * x0_hat + (1 - a).sqrt() * eps_hat, x_t, **tol)  # DDPM Eq. 4 holds
        back = {"eps": eps_hat, "x0": x0_hat, "v": velocity(x0_hat, eps_hat, a)}[kind]
        torch.testing.assert_close(back, pred, **tol)


def test_v_is_a_rotation_of_x0_and_eps():
    """(x_t, v) = R(phi) (x0, eps) with cos(phi) = sqrt(alpha_bar): so ||x_t||^2 + ||v||^2 = ||x0||^2 + ||eps||^2."""
    x0, eps, x_t, a = noised((6, 3, 4, 4), torch.float64)
    v = velocity(x0, eps, a)
    torch.testing.assert_close((x_t ** 2 + v ** 2).flatten(1).sum(1), (x0 ** 2 + eps ** 2).flatten(1).sum(1))


@pytest.mark.parametrize("name,theirs", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_velocity_matches_diffusers_get_velocity(name, theirs):
    diffusers = pytest.importorskip("diffusers")
    sch = make_schedule(name, 1000)
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
    sched.alphas_cumprod = sch.alpha_bar  # float64 (it builds float32)
    x0, eps = torch.randn(8, 3, 4, 4, dtype=torch.float64), torch.randn(8, 3, 4, 4, dtype=torch.float64)
    t = torch.randint(0, 1000, (8,))
    torch.testing.assert_close(velocity(x0, eps, gather(sch.alpha_bar, t, x0)), sched.get_velocity(x0, eps, t),
                               rtol=1e-13, atol=1e-13)


def test_conversions_at_the_data_end():
    """alpha_bar = 1 (the samplers' step -1): x_t is x0, and v is eps."""
    x, pred = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(eps_to_x0(pred, x, 1.0), x)
    torch.testing.assert_close(v_to_x0(pred, x, 1.0), x)
    torch.testing.assert_close(v_to_eps(pred, x, 1.0), pred)


# ---- weights -------------------------------------------------------------------------------------

SNR = torch.tensor([1e-4, 0.5, 1.0, 4.9, 5.0, 5.1, 100.0, 1e4], dtype=torch.float64)


@pytest.mark.parametrize("gamma", [1.0, 5.0])
def test_min_snr_weights_closed_form(gamma):
    capped = torch.where(SNR < gamma, SNR, torch.full_like(SNR, gamma))
    torch.testing.assert_close(min_snr_weight(SNR, "eps", gamma), capped / SNR)
    torch.testing.assert_close(min_snr_weight(SNR, "v", gamma), capped / (SNR + 1))
    torch.testing.assert_close(min_snr_weight(SNR, "x0", gamma), capped)
    eps_w = min_snr_weight(SNR, "eps", gamma)  # 1 up to gamma, then gamma / SNR
    assert bool((eps_w[SNR <= gamma] == 1).all()) and bool((eps_w[SNR > gamma] < 1).all())


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
def test_min_snr_weight_is_min_snr_gamma_in_x0_space(target):
    """Re-derived: whatever the target, the weighted loss equals min(SNR, gamma) ||x0 - x0_hat||^2
    for the x0 the prediction implies."""
    x0, eps, x_t, a = noised((6, 2), torch.float64, "linear")
    pred = {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[target] + 0.1 * torch.randn(6, 2, dtype=torch.float64)
    snr = signal_to_noise(a.flatten())
    truth = {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[target]
    weighted = min_snr_weight(snr, target) * (pred - truth).pow(2).sum(1)
    x0_err = (pred_to_x0(pred, x_t, a, target) - x0).pow(2).sum(1)
    torch.testing.assert_close(weighted, snr.clamp(max=5.0) * x0_err)
    torch.testing.assert_close(x0_error_factor(snr, target) * x0_err, (pred - truth).pow(2).sum(1))


# ---- losses --------------------------------------------------------------------------------------

def test_prediction_loss_on_eps_is_epsilon_loss():
    sch, x0 = make_schedule("linear", 100), torch.randn(16, 3, 4, 4)
    model = lambda x, t: 0.5 * x + 0.01 * t[:, None, None, None].float()
    ours = PredictionLoss(sch, "eps")(model, x0, generator=torch.Generator().manual_seed(0))
    ref = EpsilonLoss(sch)(model, x0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
@pytest.mark.parametrize("loss_cls", [PredictionLoss, MinSNRLoss])
def test_losses_vanish_for_an_oracle(target, loss_cls):
    sch, x0 = make_schedule("cosine", 50), torch.randn(32, 2, dtype=torch.float64)

    def oracle(x_t, t):  # reads the noise back off x_t, knowing x0
        a = gather(sch.alpha_bar, t, x_t)
        eps = x0_to_eps(x0, x_t, a)
        return {"eps": eps, "x0": x0, "v": velocity(x0, eps, a)}[target]

    loss = loss_cls(sch, target)
    assert loss(oracle, x0, generator=torch.Generator().manual_seed(0)).item() < 1e-10
    assert loss(lambda x_t, t: torch.zeros_like(x_t), x0, generator=torch.Generator().manual_seed(0)).item() > 1e-3


def test_min_snr_loss_weights_each_sample():
    sch, x0 = make_schedule("linear", 1000), torch.randn(64, 2, dtype=torch.float64)
    model = lambda x, t: 0.3 * x
    loss = MinSNRLoss(sch, "v", gamma=5.0)(model, x0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)  # the same draws, by hand
    t = torch.randint(0, 1000, (64,), generator=g)
    noise = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    a = gather(sch.alpha_bar, t, x0)
    x_t = add_noise(sch, x0, t, noise)
    per_sample = (model(x_t, t).float() - velocity(x0, noise, a).float()).pow(2).mean(1)
    w = min_snr_weight(signal_to_noise(sch.alpha_bar[t]), "v", 5.0).float()
    torch.testing.assert_close(loss, (w * per_sample).mean())


def test_bad_target_names_list_the_choices():
    sch = make_schedule("linear", 10)
    for make in (lambda: PredictionLoss(sch, "epsilon"), lambda: MinSNRLoss(sch, "v_prediction"),
                 lambda: min_snr_weight(SNR, "sample")):
        with pytest.raises(ValueError, match="Unknown target .*expected one of 'eps', 'x0', 'v'"):
            make()
    with pytest.raises(ValueError, match="Unknown prediction_type 'noise'; expected one of 'eps', 'x0', 'v'"):
        pred_to_x0(torch.zeros(2, 2), torch.zeros(2, 2), 0.5, "noise")
    with pytest.raises(ValueError, match="gamma must be > 0"):
        MinSNRLoss(sch, "eps", gamma=0.0)
