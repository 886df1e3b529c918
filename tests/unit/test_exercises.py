"""Each checker passes the reference solution and fails a plausible wrong answer, clearly."""

import pytest
import torch

from course_lib.exercises import ExerciseError, check_against_reference
from course_lib.exercises.core import ExerciseNotImplementedError
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


# ---- what a failure message holds: the failing case, expected vs actual, the error, the hint ----

def _case(k):
    g = torch.Generator().manual_seed(k)
    return {"x": torch.randn(4, 5, generator=g, dtype=torch.float64), "t": torch.tensor([3, 0, 7, 1])}


def _reference(x, t):
    return 2 * x


def _fail(student, cases=None):
    with pytest.raises(ExerciseError) as info:
        check_against_reference("double", student, _reference, cases or [_case(0), _case(1)], hint="multiply by 2")
    return info.value, str(info.value)


def test_wrong_values_name_the_case_the_error_and_an_excerpt():
    def student(x, t):
        y = 2 * x
        if x[0, 0] == _case(1)["x"][0, 0]:  # wrong on the second case only, at flat index 11 = (2, 1)
            y[2, 1] += 0.5
        return y

    _, message = _fail(student)
    assert "returned the wrong values on input 2 of 2:" in message
    assert "x: tensor of shape (4, 5), dtype torch.float64" in message
    assert "t: tensor of shape (4,), dtype torch.int64, values 0..7" in message
    assert "1 of 20 values differ" in message and "the largest absolute error is 0.5 at index (2, 1)" in message
    expected = 2 * _case(1)["x"].flatten()
    assert f"expected[10:16] (flattened): [{expected[10].item():.6g}, " in message  # starts just before the bad value
    assert f"got     [10:16] (flattened): [{expected[10].item():.6g}, {expected[11].item() + 0.5:.6g}, " in message
    assert message.rstrip().endswith("Hint: multiply by 2")


def test_nan_and_dtype_are_pointed_out():
    _, message = _fail(lambda x, t: (2 * x).sqrt().float())
    assert "NaN" in message and "you returned dtype torch.float32, the reference torch.float64" in message
    assert "input 1 of 2" in message


def test_shape_mismatch_gives_both_shapes():
    _, message = _fail(lambda x, t: (2 * x).T)
    assert "returned shape (5, 4), expected (4, 5) (the same number of elements" in message
    assert "on input 1 of 2:" in message and "x: tensor of shape (4, 5)" in message and "Hint:" in message


def test_returning_none_suggests_a_missing_return():
    _, message = _fail(lambda x, t: None)
    assert "must return a torch.Tensor, got NoneType (did you forget `return`?)" in message


def test_a_stub_is_a_not_implemented_error_that_carries_the_exercise():
    def stub(x, t):
        raise NotImplementedError("Exercise: Double it\nWrite `double(x, t)` returning 2x.")

    error, message = _fail(stub)
    assert isinstance(error, NotImplementedError) and isinstance(error, ExerciseNotImplementedError)
    assert "double is not implemented yet" in message and "Write `double(x, t)` returning 2x." in message
    assert "Hint: multiply by 2" in message
