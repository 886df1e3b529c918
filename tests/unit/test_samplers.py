import pytest
import torch

from course_lib.samplers.ddpm import annealed_langevin_sample, ddpm_sample, ddpm_step
from course_lib.process.schedules import make_schedule

from test_diffusion import SCHEDULES, float64_diffusers

VARIANCES = [("small", "fixed_small"), ("large", "fixed_large")]


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
@pytest.mark.parametrize("variance,variance_type", VARIANCES)
@pytest.mark.parametrize("clip", [None, 1.0])
@pytest.mark.parametrize("t", [999, 500, 1, 0])
def test_ddpm_step_matches_diffusers_float64(ours, theirs, variance, variance_type, clip, t):
    sched, ref = float64_diffusers(theirs, ours)
    sched.register_to_config(variance_type=variance_type, clip_sample=clip is not None, clip_sample_range=clip or 1.0)
    sched.variance_type = variance_type
    x_t = 1.5 * torch.randn(6, 3, 4, 4, dtype=torch.float64)
    eps = torch.randn_like(x_t)
    expected = sched.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    actual = ddpm_step(ref, eps, t, x_t, noise, variance=variance, clip_x0=clip)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_ddpm_sample_is_deterministic_under_a_seed():
    sch = make_schedule("cosine", 50)
    model = lambda x, t: 0.1 * x + 0.01 * t[:, None].float()
    run = lambda seed: ddpm_sample(model, sch, torch.randn(5, 2, generator=torch.Generator().manual_seed(seed)),
                                   generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.allclose(run(1), run(2))


def test_ddpm_sample_keeps_trajectory():
    sch = make_schedule("linear", 20)
    x, traj = ddpm_sample(lambda x, t: torch.zeros_like(x), sch, torch.randn(4, 2), keep_every=5)
    assert traj.shape == (5, 4, 2)  # x_T, then after t = 15, 10, 5, 0
    torch.testing.assert_close(traj[-1], x)


@pytest.mark.parametrize("std", [0.5, 2.0])
def test_perfect_denoiser_recovers_gaussian_data(std):
    """For x0 ~ N(0, std^2 I), x_t ~ N(0, v_t I) with v_t = a std^2 + 1 - a, and the exact
    eps-prediction is E[eps | x_t] = sqrt(1 - a) x_t / v_t. DDPM with it must return std.
    T = 1000 so that x_T ~ N(0, I) holds (alpha_bar_T ~ 4e-5)."""
    sch = make_schedule("linear", 1000)

    g = torch.Generator().manual_seed(0)
    x = ddpm_sample(_gaussian_optimal_eps(sch, std), sch, torch.randn(20_000, 2, generator=g, dtype=torch.float64), generator=g)
    assert abs(x.std().item() - std) < 0.02 * std
    assert abs(x.mean().item()) < 0.02


def _gaussian_optimal_eps(sch, std):
    def optimal_eps(x, t):
        a = sch.alpha_bar[t].to(x.dtype)[:, None]
        return (1 - a).sqrt() * x / (a * std**2 + 1 - a)
    return optimal_eps


def test_langevin_at_one_level_samples_that_levels_marginal():
    """With the exact score of p_t, Langevin at level t alone converges to p_t = N(0, v_t I)."""
    sch, std, t = make_schedule("linear", 100), 0.5, 50
    g = torch.Generator().manual_seed(0)
    x = annealed_langevin_sample(_gaussian_optimal_eps(sch, std), sch, torch.randn(20_000, 2, generator=g, dtype=torch.float64),
                                 levels=[t], steps_per_level=300, step_scale=0.5, generator=g)
    a = sch.alpha_bar[t].item()
    assert abs(x.std().item() - (a * std**2 + 1 - a) ** 0.5) < 0.02


def test_annealed_langevin_approaches_gaussian_data():
    """Annealed over levels, it ends near the data: within 5%, because at the last levels the step
    (proportional to 1 - alpha_bar_t) is too small to mix over the data's scale."""
    sch, std = make_schedule("linear", 100), 0.5
    g = torch.Generator().manual_seed(0)
    x = annealed_langevin_sample(_gaussian_optimal_eps(sch, std), sch, torch.randn(20_000, 2, generator=g, dtype=torch.float64),
                                 levels=list(range(99, -1, -11)), steps_per_level=100, step_scale=0.5, generator=g)
    assert abs(x.std().item() - std) < 0.05 * std


def test_sampler_inputs_are_checked():
    sch = make_schedule("linear", 10)
    x = torch.randn(2, 2)
    with pytest.raises(ValueError, match="variance must be 'small'"):
        ddpm_step(sch, x, 3, x, x, variance="learned")
    with pytest.raises(ValueError, match="share a shape"):
        ddpm_step(sch, torch.randn(2, 3), 3, x, x)
    with pytest.raises(TypeError, match="Python int"):
        ddpm_step(sch, x, torch.tensor([3, 3]), x, x)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        ddpm_step(sch, x, 10, x, x)
    with pytest.raises(ValueError, match="strictly decreasing"):
        annealed_langevin_sample(lambda x, t: x, sch, x, levels=[1, 5])
