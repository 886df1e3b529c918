"""Samplers and exercise checkers on bad or awkward inputs: a clear error (or the right answer), never a
silent NaN, an empty run or a wrapped index."""

import math

import pytest
import torch

from course_lib.exercises import ExerciseError, check_against_reference
from course_lib.exercises.ch03 import check_v_to_x0
from course_lib.process.diffusion import eps_to_x0, gather
from course_lib.process.schedules import make_schedule
from course_lib.samplers.consistency import lcm_sample
from course_lib.samplers.ddim import ddim_invert, ddim_sample, timesteps
from course_lib.samplers.ddpm import ddpm_sample
from course_lib.samplers.flow import flow_times, shift_times

F64 = torch.float64


# ---- 1. DDIM inversion of an x0-prediction model -------------------------------------------------

def eps_model(schedule, seed=0, dim=12):
    """A fixed random eps-model of (x, t): tanh of a random linear map of x plus a random step embedding."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g, dtype=F64) / dim ** 0.5
    emb = 0.5 * torch.randn(schedule.num_steps, dim, generator=g, dtype=F64)
    return lambda x, t: (torch.tanh(x.flatten(1) @ W) + emb[t]).reshape(x.shape)


def as_x0_model(schedule, eps_fn):
    """The same network read as an x0-prediction: x0_hat = eps_to_x0(eps(x, t), x, alpha_bar_t), at its own step t."""
    return lambda x, t: eps_to_x0(eps_fn(x, t), x, gather(schedule.alpha_bar, t, x))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 10, 50])
def test_ddim_invert_x0_prediction_equals_the_eps_model_it_is_built_from(spacing, n):
    sch = make_schedule("linear", 1000)
    eps_fn = eps_model(sch)
    x0 = torch.randn(3, 12, generator=torch.Generator().manual_seed(1), dtype=F64)
    steps = timesteps(1000, n, spacing)
    want, want_traj = ddim_invert(eps_fn, sch, x0, steps, prediction_type="eps", keep_trajectory=True)
    got, got_traj = ddim_invert(as_x0_model(sch, eps_fn), sch, x0, steps, prediction_type="x0", keep_trajectory=True)
    assert torch.isfinite(got_traj).all()
    torch.testing.assert_close(got_traj, want_traj, rtol=1e-9, atol=1e-9)
    # and sampling back from it with the x0 model is sampling back with the eps model
    torch.testing.assert_close(ddim_sample(as_x0_model(sch, eps_fn), sch, got, steps, prediction_type="x0"),
                               ddim_sample(eps_fn, sch, want, steps), rtol=1e-9, atol=1e-9)


# ---- 2. lcm_sample's custom timesteps ------------------------------------------------------------

def lcm_model(z, t, tokens, w):
    return 0.1 * z + 0.01 * (t.double() / 1000).reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("steps,match", [
    ([19, 499], "strictly decreasing"),
    ([999, 999, 19], "strictly decreasing"),
    ([], "non-empty"),
    ([999, -1], r"must lie in \[0, 999\]"),
    ([1000, 19], r"must lie in \[0, 999\]"),
    ([999.0, 19.0], "integer steps"),
])
def test_lcm_sample_checks_custom_timesteps(steps, match):
    sch, z_T = make_schedule("linear", 1000), torch.randn(2, 4, 2, 2, dtype=F64)
    with pytest.raises(ValueError, match=match):
        lcm_sample(lcm_model, sch, z_T, 2, 2.0, torch.zeros(5, dtype=torch.long), timesteps=steps)


def test_lcm_sample_wants_num_steps_to_match_custom_timesteps():
    sch, z_T = make_schedule("linear", 1000), torch.randn(2, 4, 2, 2, dtype=F64)
    with pytest.raises(ValueError, match="timesteps lists 3 steps but num_steps is 4"):
        lcm_sample(lcm_model, sch, z_T, 4, 2.0, torch.zeros(5, dtype=torch.long), timesteps=[999, 499, 0])


def test_lcm_sample_runs_valid_custom_timesteps():
    sch, z_T = make_schedule("linear", 1000), torch.randn(2, 4, 2, 2, dtype=F64)
    out, denoised = lcm_sample(lcm_model, sch, z_T, 3, 2.0, torch.zeros(5, dtype=torch.long),
                               torch.Generator().manual_seed(0), timesteps=torch.tensor([999, 499, 0]),
                               keep_trajectory=True)
    assert denoised.shape == (3, 2, 4, 2, 2) and torch.equal(out, denoised[-1])


# ---- 3. ddpm_sample's keep_every -----------------------------------------------------------------

@pytest.mark.parametrize("keep_every", [-1, 0, 2.5, True, "5"])
def test_ddpm_sample_rejects_a_bad_keep_every(keep_every):
    sch = make_schedule("linear", 20)
    with pytest.raises(ValueError, match="keep_every must be None .* or an int >= 1"):
        ddpm_sample(lambda x, t: torch.zeros_like(x), sch, torch.randn(4, 2), keep_every=keep_every)


def test_ddpm_sample_keeps_no_trajectory_by_default():
    sch = make_schedule("linear", 20)
    x = ddpm_sample(lambda x, t: torch.zeros_like(x), sch, torch.randn(4, 2))
    assert isinstance(x, torch.Tensor) and x.shape == (4, 2)
    x, traj = ddpm_sample(lambda x, t: torch.zeros_like(x), sch, torch.randn(4, 2), keep_every=20)
    assert traj.shape == (2, 4, 2)  # x_T, then x after t = 0


# ---- 4. flow_times and shift_times ---------------------------------------------------------------

@pytest.mark.parametrize("shift", [math.nan, math.inf, -math.inf, 0.0, -1.0, True, "3"])
def test_flow_times_and_shift_times_reject_a_bad_shift(shift):
    with pytest.raises(ValueError, match="shift must be a finite number > 0"):
        flow_times(8, shift=shift)
    with pytest.raises(ValueError, match="shift must be a finite number > 0"):
        shift_times(torch.linspace(0, 1, 5, dtype=F64), shift)


@pytest.mark.parametrize("num_train_steps", [0, -5, 2.5, True, None])
def test_flow_times_rejects_a_bad_num_train_steps(num_train_steps):
    with pytest.raises(ValueError, match="num_train_steps must be an int >= 1"):
        flow_times(8, num_train_steps=num_train_steps)


@pytest.mark.parametrize("num_steps", [0, -1, 2.0, True])
def test_flow_times_rejects_a_bad_num_steps(num_steps):
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        flow_times(num_steps)


def test_flow_times_with_one_training_step():
    assert torch.equal(flow_times(1, num_train_steps=1), torch.tensor([1.0, 0.0], dtype=F64))
    with pytest.raises(ValueError, match="num_train_steps=1"):
        flow_times(4, num_train_steps=1)  # the grid would run from 1 to 1: every value 1
    s = flow_times(4, shift=3.0, num_train_steps=2)
    assert bool((s[1:] < s[:-1]).all())


# ---- 5. exercise checkers: float32 round-off is named as such ------------------------------------

def _cases():
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(4, 5, generator=g, dtype=F64)} for _ in range(2)]


def _check(student):
    with pytest.raises(ExerciseError) as info:
        check_against_reference("scale", student, lambda x: 0.1 * x + x.exp(), _cases(), hint="0.1 x + e^x",
                                rtol=1e-9, atol=1e-10)
    return str(info.value)


@pytest.mark.parametrize("student", [
    lambda x: (0.1 * x.float() + x.float().exp()),  # computed and returned in float32
    lambda x: torch.tensor(0.1) * x + x.exp().float().double(),  # float64 result with float32 round-off
    lambda x: torch.tensor([0.1]) * x + x.exp(),  # a float32 constant, promoted: its rounding remains
])
def test_float32_round_off_is_named_and_the_fix_given(student):
    message = _check(student)
    assert "returned the wrong values on input 1 of 2" in message and "values differ" in message
    assert "float32 round-off" in message and "dtype=x.dtype" in message and "float64" in message
    assert message.rstrip().endswith("Hint: 0.1 x + e^x")


@pytest.mark.parametrize("student", [
    lambda x: (0.2 * x.float() + x.float().exp()),  # a wrong formula, in float32
    lambda x: 0.1 * x + x.exp() + 1e-3,  # a real error, in float64
])
def test_real_errors_are_not_called_round_off(student):
    message = _check(student)
    assert "returned the wrong values" in message and "round-off" not in message


def test_a_real_checker_explains_a_float32_solution():
    def v_to_x0(x_t, v, t, alpha_bar):
        a = alpha_bar.float()[t].view(-1, 1, 1, 1)
        return a.sqrt() * x_t - (1 - a).sqrt() * v

    with pytest.raises(ExerciseError) as info:
        check_v_to_x0(v_to_x0)
    message = str(info.value)
    assert "wrong values" in message and "float32 round-off" in message and "Hint:" in message
