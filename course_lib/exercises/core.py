"""The generic checker behind every chapter's exercises.

A failure message says which input case failed (every input's shape and dtype), what the
reference returned and what the student's function returned (shapes, or the number of wrong
values, the largest absolute error and where, and a short excerpt of both; float32 round-off is
named as such), and the hint.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

EXCERPT = 6  # values shown side by side when the values are wrong


class ExerciseError(AssertionError):
    """Raised when a student's function disagrees with the reference; the message says how."""


class ExerciseNotImplementedError(ExerciseError, NotImplementedError):
    """The student's function still raises NotImplementedError (the stub of a student notebook)."""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        if value.numel() and not value.is_floating_point() and not value.is_complex():
            text += f", values {int(value.min())}..{int(value.max())}"
        elif 0 < value.numel() <= 4:
            text += f", values {[round(v, 6) for v in value.flatten().tolist()]}"
        return text
    return repr(value)


def _excerpt(x: torch.Tensor, start: int) -> str:
    values = x.flatten()[start:start + EXCERPT].tolist()
    return "[" + ", ".join(f"{v:.6g}" for v in values) + (", ...]" if start + EXCERPT < x.numel() else "]")


def _value_mismatch(expected: torch.Tensor, actual: torch.Tensor, rtol: float, atol: float) -> str:
    """How ``actual`` (already on ``expected``'s device and dtype) differs from ``expected``: a few lines."""
    bad = ~torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    err = (actual.double() - expected.double()).abs().nan_to_num(nan=float("inf"))
    worst = int(err.flatten().argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape))
    lines = [f"{int(bad.sum())} of {bad.numel()} values differ (rtol {rtol:g}, atol {atol:g}); "
             f"the largest absolute error is {err.flatten()[worst].item():.4g} at index {idx}: "
             f"expected {expected.flatten()[worst].item():.6g}, got {actual.flatten()[worst].item():.6g}"]
    n_nan, n_inf = int(actual.isnan().sum()), int(actual.isinf().sum())
    if n_nan or n_inf:
        lines.append(f"your result contains {n_nan} NaN and {n_inf} infinite values (a log or sqrt of a negative, "
                     f"or a division by zero?)")
    start = max(0, int(bad.flatten().nonzero()[0]) - 1)  # from just before the first wrong value
    where = f"[{start}:{start + EXCERPT}]" if start else f"[:{EXCERPT}]"
    lines.append(f"expected{where} (flattened): {_excerpt(expected, start)}")
    lines.append(f"got     {where} (flattened): {_excerpt(actual, start)}")
    return "\n  ".join(lines)


def _call(name: str, fn: Callable, case: dict[str, Any], where: str, hint: str) -> Any:
    """``fn(**case)`` on copies of the inputs; the student's exceptions become ExerciseErrors."""
    try:
        return fn(**{key: v.clone() if isinstance(v, torch.Tensor) else v for key, v in case.items()})
    except NotImplementedError as err:
        task = "".join(f"\n  {line}" for line in str(err).splitlines())  # a stub's exercise text
        raise ExerciseNotImplementedError(
            f"{name} is not implemented yet: replace `raise NotImplementedError` with your code, run that "
            f"cell, then this one.{task}\n  Hint: {hint}") from None
    except Exception as err:
        raise ExerciseError(f"{name} raised {type(err).__name__}: {err}\n  {where}\n  Hint: {hint}") from err


def _compare(name: str, expected: torch.Tensor | tuple, actual: Any, where: str, rtol: float, atol: float) -> str | None:
    """None if ``actual`` matches ``expected``, else what is wrong (the start of the failure message).
    A tuple of tensors (a function with several results) is compared item by item."""
    if isinstance(expected, tuple):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            got = f"{len(actual)} values" if isinstance(actual, (tuple, list)) else type(actual).__name__
            return f"{name} must return {len(expected)} tensors (a tuple), got {got} {where}"
        for i, (e, a) in enumerate(zip(expected, actual), start=1):
            problem = _compare(f"{name}'s result {i} of {len(expected)}", e, a, where, rtol, atol)
            if problem:
                return problem
        return None
    if not isinstance(actual, torch.Tensor):
        forgot = " (did you forget `return`?)" if actual is None else ""
        return f"{name} must return a torch.Tensor, got {type(actual).__name__}{forgot} {where}"
    if actual.shape != expected.shape:
        same = " (the same number of elements: check a reshape, a transpose or keepdim)" \
            if actual.numel() == expected.numel() else ""
        return f"{name} returned shape {tuple(actual.shape)}, expected {tuple(expected.shape)}{same}, {where}"
    converted = actual.detach().to(expected.device, expected.dtype)
    if torch.allclose(converted, expected, rtol=rtol, atol=atol):
        return None
    dtype_note = f"\n  you returned dtype {actual.dtype}, the reference {expected.dtype}" \
        if actual.dtype != expected.dtype else ""
    return (f"{name} returned the wrong values {where}\n  {_value_mismatch(expected, converted, rtol, atol)}"
            f"{dtype_note}{_round_off_note(expected, actual, converted, rtol)}")


def _round_off_note(expected: torch.Tensor, actual: torch.Tensor, converted: torch.Tensor, rtol: float) -> str:
    """A line naming low-precision round-off when every error is at its level (relative to the largest
    expected value) while the check's rtol is tighter, e.g. a float32 constant in a float64 formula; else ""."""
    if expected.dtype != torch.float64 or not actual.is_floating_point() or expected.numel() == 0:
        return ""
    low = actual.dtype if torch.finfo(actual.dtype).eps > torch.finfo(torch.float32).eps else torch.float32
    level = max(1e-5, 10 * torch.finfo(low).eps)  # float32: 1e-5, a few ulps after a few operations
    scale = expected.double().abs().max().item()
    worst = (converted.double() - expected.double()).abs().max().item()  # NaN if any is NaN: then no note
    if not rtol < level or not scale > 0 or not worst <= level * scale:
        return ""
    low_name = str(low).removeprefix("torch.")
    return (f"\n  the largest error is {worst / scale:.1g} of the largest expected value: that looks like {low_name} "
            f"round-off rather than a wrong formula. The reference is float64 and the check expects float64 "
            f"accuracy: keep every step in float64 (no .float(), no torch.float32 constants; write "
            f"torch.tensor(c, dtype=x.dtype) or a plain Python number c).")


def check_against_reference(name: str, student_fn: Callable, reference_fn: Callable,
                            cases: Sequence[dict[str, Any]], hint: str,
                            rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Call ``student_fn(**case)`` and ``reference_fn(**case)`` for every case; compare the results.

    Raises ExerciseError naming the case's inputs (shapes and dtypes), the expected and actual
    shapes or values (the largest absolute error and an excerpt), and ``hint``;
    ExerciseNotImplementedError (also a NotImplementedError) for an unsolved stub. Prints one
    line when every case agrees.
    """
    for k, case in enumerate(cases, start=1):
        inputs = "\n".join(f"    {key}: {_describe(v)}" for key, v in case.items())
        where = f"on input {k} of {len(cases)}:\n{inputs}"
        expected = reference_fn(**{key: v.clone() if isinstance(v, torch.Tensor) else v for key, v in case.items()})
        actual = _call(name, student_fn, case, where, hint)
        problem = _compare(name, expected, actual, where, rtol, atol)
        if problem:
            raise ExerciseError(f"{problem}\n  Hint: {hint}")
    print(f"✓ {name} matches the reference on {len(cases)} random inputs.")
