"""Chapter 4's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch04 import check_ddim_step, check_heun_step, check_karras_sigmas, check_slerp


def ddim_step(x_t, eps, t, t_prev, alpha_bar, eta, noise, noise_in_sqrt=True):
    a = alpha_bar[t]
    a_prev = alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=alpha_bar.dtype)
    x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    sigma = eta * ((1 - a_prev) / (1 - a)).sqrt() * (1 - a / a_prev).sqrt()
    direction = (1 - a_prev - (sigma ** 2 if noise_in_sqrt else 0)).sqrt() * eps
    return a_prev.sqrt() * x0_hat + direction + sigma * noise


def slerp(z0, z1, weight):
    a, b = z0.flatten(1), z1.flatten(1)
    theta = torch.arccos((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).view(-1, *([1] * (z0.ndim - 1)))
    return (torch.sin((1 - weight) * theta) * z0 + torch.sin(weight * theta) * z1) / torch.sin(theta)


def test_correct_solutions_pass(capsys):
    check_ddim_step(ddim_step)
    check_slerp(slerp)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("checker,wrong,what,case", [
    # forgot to take sigma^2 out of the direction term: right for eta = 0 only, so input 3 fails
    (check_ddim_step, lambda **kw: ddim_step(**kw, noise_in_sqrt=False), "wrong values", "input 3 of 5"),
    # t_prev = -1 read as alpha_bar[-1] (the noisiest step) instead of 1
    (check_ddim_step, lambda x_t, eps, t, t_prev, alpha_bar, eta, noise:
        ddim_step(x_t, eps, t, t_prev % len(alpha_bar), alpha_bar, eta, noise), "wrong values", "input 5 of 5"),
    (check_slerp, lambda z0, z1, weight: (1 - weight) * z0 + weight * z1, "wrong values", "input 1 of 4"),  # a straight line
])
def test_plausible_mistakes_fail_clearly(checker, wrong, what, case):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value) and case in str(info.value)


def karras(num_steps, sigma_min, sigma_max, rho, skip_zero=False, float_ramp=False):
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float32 if float_ramp else torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    s = (hi + ramp * (lo - hi)) ** rho
    return s if skip_zero else torch.cat([s, s.new_zeros(1)])


def heun_step(denoiser, x, sigma, sigma_next, euler_last=True, half=0.5):
    d = (x - denoiser(x, sigma)) / sigma
    x_next = x + (sigma_next - sigma) * d
    if sigma_next == 0 and euler_last:
        return x_next
    d_next = (x_next - denoiser(x_next, max(sigma_next, 1e-12))) / max(sigma_next, 1e-12)
    return x + (sigma_next - sigma) * (half * d + (1 - half) * d_next)


def test_edm_exercises_pass_correct_solutions(capsys):
    check_karras_sigmas(karras)
    check_heun_step(heun_step)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("checker,wrong,what", [
    (check_karras_sigmas, lambda **kw: karras(**kw, skip_zero=True), "shape"),  # forgot the final 0
    (check_karras_sigmas, lambda **kw: karras(**kw).flip(0), "wrong values"),  # sigma_min first
    (check_karras_sigmas, lambda num_steps, sigma_min, sigma_max, rho:
        karras(num_steps, sigma_min, sigma_max, 1.0), "wrong values"),  # rho ignored: right for rho = 1 only
    (check_heun_step, lambda **kw: heun_step(**kw, euler_last=False), "wrong values"),  # divides by sigma_next = 0
    (check_heun_step, lambda **kw: heun_step(**kw, half=1.0), "wrong values"),  # Euler only
])
def test_edm_exercises_fail_plausible_mistakes_clearly(checker, wrong, what):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value)
