"""Chapters 6 and 7's checkers pass correct solutions and fail plausible mistakes with a clear message."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.exercises import ExerciseError
from course_lib.exercises.ch06 import check_cross_attention, check_img2img_steps
from course_lib.exercises.ch07 import check_ada_ln_zero, check_patchify


def cross_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1) @ v


def img2img_steps(steps, strength):
    keep = min(int(len(steps) * strength), len(steps))
    return steps[len(steps) - keep:]


def patchify(x, p):
    B, C, S, _ = x.shape
    return x.reshape(B, C, S // p, p, S // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, (S // p) ** 2, p * p * C)


def ada_ln_zero(x, f, shift, scale, gate):
    h = F.layer_norm(x, x.shape[-1:], eps=1e-6)
    return x + gate[:, None] * f(h * (1 + scale[:, None]) + shift[:, None])


def test_correct_solutions_pass(capsys):
    check_cross_attention(cross_attention)
    check_img2img_steps(img2img_steps)
    check_patchify(patchify)
    check_ada_ln_zero(ada_ln_zero)
    assert capsys.readouterr().out.count("✓") == 4


def _mask_after_softmax(q, k, v, mask):
    w = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1) * mask[:, None, None, :]
    return w @ v


@pytest.mark.parametrize("checker,wrong,what,case", [
    (check_cross_attention, _mask_after_softmax, "wrong values", "input 2 of 3"),  # weights no longer sum to 1
    (check_cross_attention, lambda q, k, v, mask: (q @ k.transpose(-2, -1)).masked_fill(
        ~mask[:, None, None, :], float("-inf")).softmax(-1) @ v, "wrong values", "input 1 of 3"),  # no 1/sqrt(d)
    (check_img2img_steps, lambda steps, strength: steps[: int(len(steps) * strength)], "wrong values",
     "input 1 of 5"),  # the first (noisiest) steps instead of the last
    (check_img2img_steps, lambda steps, strength: steps[len(steps) - round(len(steps) * strength):],
     "returned shape (4,), expected (3,)", "input 4 of 5"),  # round() instead of int(): 3.5 steps become 4
    (check_patchify, lambda x, p: x.reshape(x.shape[0], x.shape[1], -1, p * p).permute(0, 2, 3, 1).reshape(
        x.shape[0], -1, p * p * x.shape[1]), "wrong values", "input 1 of 4"),  # strips of rows, not square patches
    (check_patchify, lambda x, p: x.reshape(x.shape[0], x.shape[1], x.shape[2] // p, p, x.shape[3] // p, p).permute(
        0, 2, 4, 1, 3, 5).reshape(x.shape[0], -1, p * p * x.shape[1]), "wrong values", "input 1 of 4"),  # channels first
    (check_ada_ln_zero, lambda x, f, shift, scale, gate: x + gate[:, None] * f(
        F.layer_norm(x, x.shape[-1:], eps=1e-6) * scale[:, None] + shift[:, None]), "wrong values",
     "input 1 of 4"),  # scale instead of 1 + scale
    (check_ada_ln_zero, lambda x, f, shift, scale, gate: gate[:, None] * f(
        F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]), "wrong values",
     "input 1 of 4"),  # no residual: gate 0 would not be the identity
])
def test_plausible_mistakes_fail_clearly(checker, wrong, what, case):
    with pytest.raises(ExerciseError) as info:
        checker(wrong)
    assert what in str(info.value) and "Hint:" in str(info.value) and case in str(info.value)
