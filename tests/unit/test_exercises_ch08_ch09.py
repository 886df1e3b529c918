"""Chapters 8 and 9's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch08 import check_euler_sampler, check_linear_path
from course_lib.exercises.ch09 import check_consistency_function, check_renoise


def linear_path(x0, eps, s):
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))
    return (1 - s) * x0 + s * eps, eps - x0


def euler(v, noise, times):
    x = noise
    for s, s_next in zip(times[:-1].tolist(), times[1:].tolist()):
        x = x + (s_next - s) * v(x, s)
    return x


def consistency(x_t, x0_hat, t):
    st = 10.0 * t.double().reshape(-1, *([1] * (x_t.ndim - 1)))
    return 0.25 / (st ** 2 + 0.25) * x_t + st / (st ** 2 + 0.25).sqrt() * x0_hat


def renoise(denoised, alpha_bar_next, noise):
    return alpha_bar_next ** 0.5 * denoised + (1 - alpha_bar_next) ** 0.5 * noise


def test_correct_solutions_pass(capsys):
    check_linear_path(linear_path)
    check_euler_sampler(euler)
    check_consistency_function(consistency)
    check_renoise(renoise)
    assert capsys.readouterr().out.count("✓") == 4


def _euler_at_the_end(v, noise, times):  # the velocity at the end of each step
    x = noise
    for s, s_next in zip(times[:-1].tolist(), times[1:].tolist()):
        x = x + (s_next - s) * v(x, s_next)
    return x


@pytest.mark.parametrize("checker,wrong,what,case", [
    (check_linear_path, lambda x0, eps, s: linear_path(x0, eps, s)[0], "must return 2 tensors", "input 1 of 3"),
    (check_linear_path, lambda x0, eps, s: (linear_path(x0, eps, s)[0], x0 - eps), "result 2 of 2 returned the wrong",
     "input 1 of 3"),  # the velocity with the other sign (time running from noise to data)
    (check_linear_path, lambda x0, eps, s: linear_path(eps, x0, s), "result 1 of 2 returned the wrong",
     "input 1 of 3"),  # data and noise swapped: s = 0 gives the noise
    (check_euler_sampler, _euler_at_the_end, "wrong values", "input 1 of 3"),
    (check_euler_sampler, lambda v, noise, times: euler(v, noise, times.flip(0)), "wrong values",
     "input 1 of 3"),  # integrated from data to noise
    (check_consistency_function, lambda x_t, x0_hat, t: consistency(x0_hat, x_t, t), "wrong values",
     "input 1 of 3"),  # c_skip on the estimate: the boundary condition fails
    (check_consistency_function, lambda x_t, x0_hat, t: consistency(x_t, x0_hat, t / 10), "wrong values",
     "input 1 of 3"),  # without LCM's timestep scaling
    (check_renoise, lambda denoised, alpha_bar_next, noise: alpha_bar_next * denoised + (1 - alpha_bar_next) * noise,
     "wrong values", "input 1 of 3"),  # no square roots
])
def test_plausible_mistakes_fail_clearly(checker, wrong, what, case):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value) and case in str(info.value)
