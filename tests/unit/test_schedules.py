import math

import pytest
import torch

from course_lib.process.schedules import NoiseSchedule, cosine_betas, linear_betas, make_schedule

diffusers = pytest.importorskip("diffusers")

# (our name, diffusers' beta_schedule name)
SCHEDULES = [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("T", [10, 100, 1000])
def test_alpha_bar_strictly_decreasing_in_unit_interval(name, T):
    a_bar = make_schedule(name, T).alpha_bar
    assert a_bar.dtype == torch.float64
    assert bool((a_bar > 0).all() and (a_bar <= 1).all())
    assert bool((a_bar[1:] < a_bar[:-1]).all())


def test_linear_matches_ddpm_paper_values():
    b = linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4, abs=1e-15)
    assert b[-1].item() == pytest.approx(0.02, abs=1e-15)
    assert torch.allclose(b[1:] - b[:-1], torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_cosine_closed_form_of_alpha_bar():
    """Improved DDPM Eq. 17: alpha_bar_t = f(t)/f(0) where no beta was clipped."""
    T, s = 1000, 0.008
    a_bar = make_schedule("cosine", T).alpha_bar
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    expected = torch.tensor([f((i + 1) / T) / f(0) for i in range(T)], dtype=torch.float64)
    unclipped = cosine_betas(T) < 0.999
    assert torch.allclose(a_bar[unclipped], expected[unclipped], rtol=1e-12, atol=0)


@pytest.mark.parametrize("ours,theirs", SCHEDULES)
def test_betas_match_diffusers(ours, theirs):
    """diffusers builds betas in float32, so agreement is to float32 precision."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs)
    assert torch.allclose(make_schedule(ours, 1000).betas, sched.betas.double(), rtol=1e-6, atol=1e-9)
    assert torch.allclose(make_schedule(ours, 1000).alpha_bar, sched.alphas_cumprod.double(), rtol=1e-5, atol=1e-9)


def test_bad_schedule_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="expected 'linear' or 'cosine'"):
        make_schedule("quadratic")
    with pytest.raises(ValueError, match="num_steps must be an int >= 2"):
        make_schedule("linear", 1)
    with pytest.raises(TypeError, match="float64"):
        NoiseSchedule(torch.full((10,), 0.1, dtype=torch.float32))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.full((10,), 1.5, dtype=torch.float64))
