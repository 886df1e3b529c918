"""Chapter 8's flow samplers: parity with diffusers' FlowMatchEuler and FlowMatchHeun schedulers (a fixed random
linear velocity model, float64 states; diffusers rounds each state to float32), the orders of convergence on
Gaussian data whose exact flow map is known, the adaptive solver, straightness and reflow couplings."""

import pytest
import torch
from torch.testing import assert_close

from course_lib.samplers.flow import (flow_euler_sample, flow_heun_sample, flow_midpoint_sample,
                                      flow_odeint_sample, flow_times, reflow_pairs, shift_times, straightness)

F64 = torch.float64
MU, C = torch.tensor([1.0, -2.0], dtype=F64), 0.5


def gaussian_velocity(x, t):
    """The exact velocity of the linear path for data N(MU, C^2 I): E[eps - x0 | x_s = x], s = t / 1000."""
    s = (t / 1000)[:, None]
    var = (1 - s) ** 2 * C ** 2 + s ** 2
    r = x - (1 - s) * MU
    return s / var * r - (MU + (1 - s) * C ** 2 / var * r)


def linear_model(D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    A, b = 0.3 * torch.randn(D, D, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64)
    return lambda x, t: x @ A + (t / 1000)[:, None].to(x.dtype) * b


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("steps", [1, 8, 25])
def test_euler_equals_diffusers_flow_match_euler(shift, steps):
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=shift)
    sched.set_timesteps(steps)
    assert_close(flow_times(steps, shift), sched.sigmas.double(), atol=1e-6, rtol=0)
    model, noise = linear_model(), torch.randn(3, 4, dtype=F64)
    x = noise
    for t in sched.timesteps:
        x = sched.step(model(x, t.repeat(3).double()), t, x).prev_sample
    assert_close(flow_euler_sample(model, noise, flow_times(steps, shift)), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [2, 10])
def test_heun_equals_diffusers_flow_match_heun(steps):
    from diffusers import FlowMatchHeunDiscreteScheduler

    sched = FlowMatchHeunDiscreteScheduler(shift=3.0)
    sched.set_timesteps(steps)
    model, noise = linear_model(seed=1), torch.randn(3, 4, dtype=F64)
    calls = []
    counted = lambda x, t: calls.append(t) or model(x, t)
    x = noise
    for t in sched.timesteps:
        x = sched.step(model(x, t.repeat(3).double()), t, x).prev_sample
    assert_close(flow_heun_sample(counted, noise, flow_times(steps, 3.0)), x, rtol=1e-5, atol=1e-5)
    assert len(calls) == len(sched.timesteps) == 2 * steps - 1


def test_shift_spends_more_of_the_grid_at_high_noise():
    s = torch.linspace(0, 1, 11, dtype=F64)
    assert_close(shift_times(s, 1.0), s)
    shifted = shift_times(s, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and bool((shifted[1:-1] > s[1:-1]).all())


def _error(sampler, steps):
    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    x = sampler(gaussian_velocity, noise, torch.linspace(1, 0, steps + 1, dtype=F64))
    return (x - (MU + C * noise)).abs().max().item()  # the exact flow map is x0 = MU + C x1


@pytest.mark.parametrize("sampler, order", [(flow_euler_sample, 1), (flow_midpoint_sample, 2), (flow_heun_sample, 2)])
def test_samplers_converge_at_their_order_to_the_exact_flow_map(sampler, order):
    e1, e2 = _error(sampler, 20), _error(sampler, 40)
    assert e1 / e2 > 0.75 * 2 ** order  # halving the step divides the error by 2^order (or more)
    if order == 1:
        assert e1 / e2 < 2.6 and e2 > 10 * _error(flow_heun_sample, 40)  # Euler is no better than first order


def test_trajectory_runs_from_noise_to_data_on_the_closed_form_path():
    noise = torch.randn(64, 2, dtype=F64)
    times = torch.linspace(1, 0, 201, dtype=F64)
    x, traj = flow_heun_sample(gaussian_velocity, noise, times, keep_trajectory=True)
    assert traj.shape == (201, 64, 2) and torch.equal(traj[0], noise) and torch.equal(traj[-1], x)
    s = times[100]  # x_s = (1 - s) MU + sqrt((1 - s)^2 C^2 + s^2) x1 for this flow
    assert_close(traj[100], (1 - s) * MU + ((1 - s) ** 2 * C ** 2 + s ** 2).sqrt() * noise, atol=1e-4, rtol=0)


def test_adaptive_dopri5_reaches_the_exact_map_and_counts_calls():
    noise = torch.randn(32, 2, dtype=F64)
    calls = []
    x, nfe = flow_odeint_sample(lambda x, t: calls.append(t) or gaussian_velocity(x, t), noise, rtol=1e-7, atol=1e-7)
    assert_close(x, MU + C * noise, atol=1e-5, rtol=0)
    assert nfe == len(calls) and 6 < nfe < 500
    _, nfe_loose = flow_odeint_sample(gaussian_velocity, noise, rtol=1e-3, atol=1e-3)
    assert nfe_loose < nfe


def test_straightness_is_zero_for_straight_paths_and_the_integral_otherwise():
    times = torch.linspace(1, 0, 1001, dtype=F64)
    e = torch.randn(5, 3, dtype=F64)
    straight = times[:, None, None] * e  # x_s = s e: straight, constant speed
    assert straightness(straight, times) == pytest.approx(0.0, abs=1e-20)
    curved = times[:, None, None] ** 2 * e  # dx/ds = 2 s e against the line's e: S = E|e|^2 int (2s - 1)^2 ds
    expected = (e ** 2).sum(1).mean().item() / 3
    assert straightness(curved, times) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="states"):
        straightness(curved[:-1], times)


def test_reflow_pairs_are_the_samples_of_their_noise():
    model, noise = linear_model(D=2), torch.randn(10, 2, dtype=F64)
    times = torch.linspace(1, 0, 6, dtype=F64)
    x0, eps = reflow_pairs(model, noise, times, sampler=flow_midpoint_sample, batch_size=3)
    assert eps is noise
    assert_close(x0, flow_midpoint_sample(model, noise, times))


def test_grids_are_checked():
    with pytest.raises(ValueError, match="decrease strictly"):
        flow_euler_sample(linear_model(), torch.zeros(1, 4), [0.0, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        flow_euler_sample(linear_model(), torch.zeros(1, 4), [1.0])
    with pytest.raises(ValueError, match="num_steps"):
        flow_times(0)
