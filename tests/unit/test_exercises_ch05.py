"""Chapter 5's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch05 import check_guided_eps, check_label_dropout


def guided_eps(eps_cond, eps_uncond, w):
    if isinstance(w, torch.Tensor):
        w = w.view(-1, 1, 1, 1)
    return eps_uncond + w * (eps_cond - eps_uncond)


def drop_labels(y, p_uncond, null_class, u):
    return torch.where(u < p_uncond, torch.full_like(y, null_class), y)


def test_correct_solutions_pass(capsys):
    check_guided_eps(guided_eps)
    check_label_dropout(drop_labels)
    assert capsys.readouterr().out.count("✓") == 2


def _paper_form(eps_cond, eps_uncond, w):  # the CFG paper's (1 + w) eps_c - w eps_u, read with our w
    return guided_eps(eps_cond, eps_uncond, w + 1)


@pytest.mark.parametrize("checker,wrong,what,case", [
    (check_guided_eps, _paper_form, "wrong values", "input 1 of 4"),  # w = 0 gives eps_cond, not eps_uncond
    (check_guided_eps, lambda eps_cond, eps_uncond, w: guided_eps(eps_uncond, eps_cond, w), "wrong values",
     "input 1 of 4"),  # the two predictions swapped
    # a (B,) tensor w not reshaped: (5,) against (5, 3, 8, 8) cannot broadcast
    (check_guided_eps, lambda eps_cond, eps_uncond, w: eps_uncond + w * (eps_cond - eps_uncond), "raised RuntimeError",
     "input 4 of 4"),
    (check_label_dropout, lambda y, p_uncond, null_class, u: drop_labels(y, 1 - p_uncond, null_class, u),
     "wrong values", "input 1 of 4"),  # keeps with probability p_uncond instead of dropping
    (check_label_dropout, lambda y, p_uncond, null_class, u: torch.where(u <= p_uncond, null_class, y),
     "wrong values", "input 1 of 4"),  # <= drops where u = p_uncond (and at u = 0 when p_uncond = 0)
    (check_label_dropout, lambda y, p_uncond, null_class, u: drop_labels(y, p_uncond, 10, u), "wrong values",
     "input 4 of 4"),  # the null class hard-coded as 10
    (check_label_dropout, lambda y, p_uncond, null_class, u: drop_labels(y, p_uncond, -1, u), "wrong values",
     "input 1 of 4"),  # -1 is not the null class: the model's null label is num_classes
])
def test_plausible_mistakes_fail_clearly(checker, wrong, what, case):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value) and case in str(info.value)
