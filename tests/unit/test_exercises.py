"""Each checker passes the reference solution and fails a plausible wrong answer, clearly."""

import pytest
import torch

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch01 import (check_posterior_mean, check_q_sample, check_score_from_eps,
                                       reference_posterior_mean)


def q_sample(x0, t, noise, alpha_bar):
    a = alpha_bar[t][:, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def score_from_eps(eps, t, alpha_bar):
    return -eps / (1 - alpha_bar[t][:, None]).sqrt()


@pytest.mark.parametrize("checker,solution", [
    (check_q_sample, q_sample),
    (check_posterior_mean, reference_posterior_mean),
    (check_score_from_eps, score_from_eps),
])
def test_checkers_pass_the_reference(checker, solution, capsys):
    checker(solution)
    assert "✓" in capsys.readouterr().out


WRONG = [
    (check_q_sample, lambda x0, t, noise, alpha_bar: alpha_bar[t][:, None] * x0 + (1 - alpha_bar[t][:, None]) * noise,
     "wrong values"),  # forgot the square roots
    (check_q_sample, lambda x0, t, noise, alpha_bar: alpha_bar[t].sqrt() * x0 + (1 - alpha_bar[t]).sqrt() * noise,
     "raised RuntimeError"),  # no reshape: (B,) does not broadcast against (B, D)
    (check_posterior_mean, lambda x0, x_t, t, alpha_bar: reference_posterior_mean(x_t, x0, t, alpha_bar),
     "wrong values"),  # swapped the roles of x0 and x_t
    (check_posterior_mean, lambda x0, x_t, t, alpha_bar: reference_posterior_mean(x0, x_t, t, alpha_bar)[:, :1],
     "returned shape"),
    (check_score_from_eps, lambda eps, t, alpha_bar: eps / (1 - alpha_bar[t][:, None]).sqrt(), "wrong values"),  # sign
    (check_score_from_eps, lambda eps, t, alpha_bar: -eps / (1 - alpha_bar[t][:, None]), "wrong values"),  # no sqrt
]


@pytest.mark.parametrize("checker,wrong,what", WRONG)
def test_checkers_fail_plausible_mistakes_with_a_clear_message(checker, wrong, what):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    message = str(info.value)
    assert what in message and "Hint:" in message and "input 1 of 4" in message
    if what == "wrong values":
        assert "expected" in message and "got" in message


def test_unimplemented_stub_gets_its_own_message():
    def stub(x0, t, noise, alpha_bar):
        raise NotImplementedError("Exercise 1.1")
    with pytest.raises(ExerciseError, match="not implemented yet"):
        check_q_sample(stub)


def test_returning_a_non_tensor_is_reported():
    with pytest.raises(ExerciseError, match="must return a torch.Tensor, got list"):
        check_score_from_eps(lambda eps, t, alpha_bar: [0.0])
