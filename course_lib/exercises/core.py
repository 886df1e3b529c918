"""The generic checker behind every chapter's exercises."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch


class ExerciseError(AssertionError):
    """Raised when a student's function disagrees with the reference; the message says how."""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
        if not value.is_floating_point() and value.numel():
            text += f", values {int(value.min())}..{int(value.max())}"
        return text
    return repr(value)


def _first_mismatch(expected: torch.Tensor, actual: torch.Tensor, rtol: float, atol: float) -> str:
    bad = ~torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    idx = tuple(int(i) for i in bad.nonzero()[0])
    return (f"{int(bad.sum())} of {bad.numel()} values differ; the first at index {idx}: "
            f"expected {expected[idx].item():.6g}, got {actual[idx].item():.6g}")


def check_against_reference(name: str, student_fn: Callable, reference_fn: Callable,
                            cases: Sequence[dict[str, Any]], hint: str,
                            rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Call ``student_fn(**case)`` and ``reference_fn(**case)`` for every case; compare the results.

    Raises ExerciseError naming the case's inputs, the expected and actual shape or values,
    and ``hint``. Prints one line when every case agrees.
    """
    for k, case in enumerate(cases, start=1):
        inputs = "\n".join(f"    {key}: {_describe(v)}" for key, v in case.items())
        where = f"on input {k} of {len(cases)}:\n{inputs}"
        expected = reference_fn(**{key: v.clone() if isinstance(v, torch.Tensor) else v for key, v in case.items()})
        try:
            actual = student_fn(**{key: v.clone() if isinstance(v, torch.Tensor) else v for key, v in case.items()})
        except NotImplementedError:
            raise ExerciseError(f"{name} is not implemented yet: replace `raise NotImplementedError` "
                                f"with your code.\n  Hint: {hint}") from None
        except Exception as err:
            raise ExerciseError(f"{name} raised {type(err).__name__}: {err}\n  {where}\n  Hint: {hint}") from err
        if not isinstance(actual, torch.Tensor):
            raise ExerciseError(f"{name} must return a torch.Tensor, got {type(actual).__name__} {where}\n  Hint: {hint}")
        if actual.shape != expected.shape:
            raise ExerciseError(f"{name} returned shape {tuple(actual.shape)}, expected {tuple(expected.shape)}, "
                                f"{where}\n  Hint: {hint}")
        if not torch.allclose(actual.to(expected.dtype), expected, rtol=rtol, atol=atol):
            detail = _first_mismatch(expected, actual.to(expected.dtype), rtol, atol)
            raise ExerciseError(f"{name} returned the wrong values {where}\n  {detail}\n  Hint: {hint}")
    print(f"✓ {name} matches the reference on {len(cases)} random inputs.")
