"""Chapter 4's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch04 import check_ddim_step, check_slerp


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
