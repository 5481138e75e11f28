"""Checks used inside the quizzes.

Two kinds, as in the nbgrader example course:

* **visible checks** (``check_*``) run in the student's notebook before grading.
  They say whether an answer is in the right *form* (a number, in the right unit,
  in a plausible range) and name the likely mistake (µg vs mg, lb vs kg, a
  percentage for a fraction, minutes for hours). They never know the answer.
* **hidden checks** (``grade_*``) run only when the quiz is graded. They
  compare with the key and, when wrong, say what to revisit.

A failed check raises :class:`QuizCheckFailed`, whose traceback is just its
message: the line of the test cell that raised it (which, for hidden checks,
holds the key) is never printed, so feedback shows no hidden test.

Answers are compared by exact type (``int``/``float``/``str``) and builtin
operators, so an object whose ``==`` always returns True earns nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "QuizCheckFailed",
    "check_choice",
    "check_number",
    "check_function",
    "grade_choice",
    "grade_number",
    "grade_function",
]

POUNDS_PER_KG = 2.20462262185


class QuizCheckFailed(AssertionError):
    """A quiz check failed. Displays as its message only (no traceback, no test source)."""

    def __init__(self, question: str, message: str) -> None:
        super().__init__(f"{question}: {message}")
        self.question = question
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m✗ {self.question}\x1b[0m: {self.message}"]


def _ok(question: str, text: str) -> None:
    print(f"✓ {question}: {text}")


def _is_real(value: object) -> bool:
    return type(value) in (int, float)


def _as_float(value: object) -> float:
    """The value of an exact int or float (never calls a student-defined method)."""
    return float.__new__(float, value) if type(value) is float else float(int.__index__(value))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Visible checks (form only)
# --------------------------------------------------------------------------


def check_choice(question: str, answer: object, options: str = "ABCD") -> None:
    """The answer is one capital letter among ``options``."""
    if answer is None:
        raise QuizCheckFailed(question, f"no answer yet: set it to one of {', '.join(repr(o) for o in options)}")
    if type(answer) is not str:
        raise QuizCheckFailed(question, f"write the letter as a string in quotes, e.g. \"{options[0]}\"; got {type(answer).__name__}")
    if len(answer) == 1 and answer.upper() in options and answer not in options:
        raise QuizCheckFailed(question, f"use a capital letter: \"{answer.upper()}\", not \"{answer}\"")
    if answer not in tuple(options):
        raise QuizCheckFailed(question, f"{answer!r} is not one of {', '.join(repr(o) for o in options)}")
    _ok(question, "a valid choice (the hidden tests check whether it is right)")


def check_number(
    question: str,
    answer: object,
    unit: str,
    plausible: tuple[float, float],
    *,
    pounds_used_as_kg: float | None = None,
    fraction: bool = False,
    per_minute_instead_of_hour: bool = False,
) -> None:
    """The answer is a finite number, in ``unit``, inside a wide ``plausible`` range.

    When it falls outside, the message names the likely slip: a factor of 1000
    (µg/mg, ng/µg, mg/L vs ng/mL), 100 (a percentage for a fraction), 60
    (minutes vs hours) or 2.2 (pounds vs kilograms). ``pounds_used_as_kg`` is
    the value the answer would have if the weight in pounds had been used as
    kilograms; it is a wrong path the question names, not the answer.
    """
    if answer is None:
        raise QuizCheckFailed(question, f"no answer yet: set it to a number in {unit}")
    if type(answer) is bool or not _is_real(answer):
        hint = " (no units or text, just the number)" if isinstance(answer, str) else ""
        raise QuizCheckFailed(question, f"the answer must be a number in {unit}{hint}; got {type(answer).__name__} {answer!r}")
    value = _as_float(answer)
    if not math.isfinite(value):
        raise QuizCheckFailed(question, f"the answer is {value}: a finite number is needed")
    low, high = plausible
    if pounds_used_as_kg is not None and math.isclose(value, pounds_used_as_kg, rel_tol=0.02):
        raise QuizCheckFailed(question, "it looks as if the weight in pounds was used as kilograms: convert first (1 kg = 2.2046 lb)")
    if low <= value <= high:
        _ok(question, f"a number in a plausible range for {unit} (the hidden tests check whether it is right)")
        return
    hints = []
    if fraction and 1 < value <= 100:
        hints.append("this looks like a percentage: give a fraction between 0 and 1 (e.g. 0.25, not 25)")
    for factor, text in (
        (1000, "a factor of 1000 off: check µg vs mg, ng vs µg, or mg/L vs ng/mL"),
        (60, "a factor of 60 off: check minutes vs hours" if not per_minute_instead_of_hour else "a factor of 60 off: a rate per minute instead of per hour?"),
        (100, "a factor of 100 off: a percentage instead of a fraction, or the reverse?"),
        (POUNDS_PER_KG, "a factor of 2.2 off: pounds vs kilograms?"),
    ):
        if low <= value / factor <= high or low <= value * factor <= high:
            hints.append(text)
            break
    if value <= 0 and low > 0:
        hints.append("it must be positive")
    detail = "; ".join(hints) if hints else f"expected something between {low:g} and {high:g} {unit}"
    raise QuizCheckFailed(question, f"{value:g} {unit} is not plausible: {detail}")


def check_function(question: str, function: object, example_args: Sequence[Any], returns: str = "a number") -> None:
    """The answer is a function that accepts the example arguments and returns a finite number."""
    if not callable(function):
        raise QuizCheckFailed(question, f"define the function first (got {type(function).__name__})")
    try:
        result = function(*example_args)
    except NotImplementedError:
        raise QuizCheckFailed(question, "the function still raises NotImplementedError: replace that line with your code") from None
    except Exception as error:  # the student's code failed: report it plainly
        raise QuizCheckFailed(question, f"calling it with {tuple(example_args)} raised {type(error).__name__}: {error}") from None
    if type(result) is bool or not _is_real(result) and not _is_numpy_real(result):
        raise QuizCheckFailed(question, f"it should return {returns}; it returned {type(result).__name__} {result!r}")
    _ok(question, f"the function runs and returns {returns} (the hidden tests check its values)")


def _is_numpy_real(value: object) -> bool:
    name = type(value).__module__ + "." + type(value).__name__
    return name in ("numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32")


# --------------------------------------------------------------------------
# Hidden checks (against the key)
# --------------------------------------------------------------------------


def grade_choice(question: str, answer: object, key: str, why: str) -> None:
    """Full marks only for exactly the key letter."""
    if type(answer) is not str or not str.__eq__(answer, key):
        raise QuizCheckFailed(question, f"not the right choice. {why}")
    _ok(question, "correct")


def _close(value: float, expected: float, rel: float, abs_tol: float) -> bool:
    return math.isfinite(value) and abs(value - expected) <= max(abs_tol, rel * abs(expected))


def grade_number(question: str, answer: object, expected: float, why: str, rel: float = 0.01, abs_tol: float = 0.0) -> None:
    """Full marks for a number within ``rel`` (relative) or ``abs_tol`` of the key."""
    if type(answer) is bool or not _is_real(answer) or not _close(_as_float(answer), float(expected), rel, abs_tol):
        raise QuizCheckFailed(question, f"not within {100 * rel:g}% of the expected value. {why}")
    _ok(question, "correct")


def grade_function(
    question: str,
    function: object,
    reference: Callable[..., float],
    cases: Iterable[Sequence[Any]],
    why: str,
    rel: float = 1e-6,
    abs_tol: float = 1e-9,
) -> None:
    """Full marks if the function matches ``reference`` on every case (the cases are not shown)."""
    if not callable(function):
        raise QuizCheckFailed(question, "no function to test")
    for number, args in enumerate(cases, start=1):
        expected = float(reference(*args))
        try:
            result = function(*args)
        except Exception as error:
            raise QuizCheckFailed(question, f"hidden case {number} raised {type(error).__name__}. {why}") from None
        if type(result) is bool or not (_is_real(result) or _is_numpy_real(result)):
            raise QuizCheckFailed(question, f"hidden case {number} returned {type(result).__name__}, not a number. {why}")
        value = float(result) if _is_numpy_real(result) else _as_float(result)
        same_infinity = math.isinf(expected) and value == expected
        if not same_infinity and not _close(value, expected, rel, abs_tol):
            raise QuizCheckFailed(question, f"hidden case {number} gives a different value. {why}")
    _ok(question, "correct on every hidden case")


def _track_cells_in_notebooks() -> None:
    """In a notebook, remember what each cell was last run with, so grading from the quiz can say "save first"."""
    from .grading.here import track_cells

    track_cells()


_track_cells_in_notebooks()
