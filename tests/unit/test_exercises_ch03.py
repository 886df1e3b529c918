"""Chapter 3's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch03 import check_mean_from_eps, check_v_to_x0


def _b(x):
    return x.view(-1, 1, 1, 1)


def mean_from_eps(x_t, eps, t, alpha_bar, sign=1.0, first_step_prev=1.0):
    a = _b(alpha_bar[t])
    a_prev = _b(torch.where(t > 0, alpha_bar[(t - 1).clamp(min=0)], torch.tensor(first_step_prev, dtype=alpha_bar.dtype)))
    alpha_t = a / a_prev
    return (x_t - sign * (1 - alpha_t) / (1 - a).sqrt() * eps) / alpha_t.sqrt()  # DDPM Eq. 11


def v_to_x0(x_t, v, t, alpha_bar):
    a = _b(alpha_bar[t])
    return a.sqrt() * x_t - (1 - a).sqrt() * v


def test_correct_solutions_pass(capsys):
    check_mean_from_eps(mean_from_eps)
    check_v_to_x0(v_to_x0)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("checker,wrong,what", [
    (check_mean_from_eps, lambda x_t, eps, t, alpha_bar: mean_from_eps(x_t, eps, t, alpha_bar, sign=-1.0),
     "wrong values"),
    # alpha_bar_{-1} taken as alpha_bar_0 instead of 1: wrong only at t = 0
    (check_mean_from_eps, lambda x_t, eps, t, alpha_bar: mean_from_eps(x_t, eps, t, alpha_bar, first_step_prev=alpha_bar[0]),
     "wrong values"),
    (check_v_to_x0, lambda x_t, v, t, alpha_bar: v_to_x0(x_t, -v, t, alpha_bar), "wrong values"),
    (check_v_to_x0, lambda x_t, v, t, alpha_bar: alpha_bar[t].sqrt() * x_t, "raised RuntimeError"),  # no reshape
])
def test_plausible_mistakes_fail_clearly(checker, wrong, what):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value) and "input 1 of 3" in str(info.value)
