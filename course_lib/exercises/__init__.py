"""Exercise checkers: each compares a student's function with the reference on random inputs
and says which input failed, what was expected and what came out, with a hint."""

from .core import ExerciseError, check_against_reference

__all__ = ["ExerciseError", "check_against_reference"]
