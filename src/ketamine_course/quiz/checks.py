"""The checks a quiz's cells call: visible ones in the student's kernel, hidden ones in the grader.

Two kinds, as in the nbgrader example course:

* **visible checks** (``check_*``) run in the student's notebook before grading.
  They say whether an answer is in the right *form* (a number, in the right unit,
  in a plausible range), and when it is out of range they name the slip that
  took it there (a rate per minute, mg/L for ng/mL, a percentage for a
  fraction) from the *factor* that slip applies (``scale_slips``), so the check
  cell never shows how to compute the answer. When they pass they say so
  without a ✓, and that the answer is not yet judged. They never know the
  answer, nor any wrong value: a check that recognised a wrong value would let
  a student find that value by trying numbers, and a slip's wrong value is the
  answer times a known factor.
* **hidden checks** (``grade_*``) run only when the quiz is graded. They
  compare with the key and, when wrong, name the slip the answer shows (lb
  used as kg, a forgotten bioavailability: ``grade_number(..., slips=...)``,
  computed beside the key) and say what to revisit.

A failed check raises :class:`QuizCheckFailed`, whose traceback is just its
message: the line of the test cell that raised it (which, for hidden checks,
holds the key) is never printed, so feedback shows no hidden test.

Answers are compared by exact type (``int``/``float``/``str``) and builtin
operators, so an object whose ``==`` always returns True earns nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .wire import numpy_number_type

__all__ = [
    "QuizCheckFailed",
    "check_choice",
    "check_number",
    "check_function",
    "SLIPS",
    "grade_choice",
    "grade_number",
    "grade_function",
]

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


NOT_YET_GRADED = "whether it is right is decided only when the quiz is graded"


def _form_ok(question: str, text: str) -> None:
    """A visible check passed: it says what was checked (the form) and that the answer is not yet judged."""
    print(f"{question}, form checked: {text}; {NOT_YET_GRADED}.")


def _is_real(value: object) -> bool:
    return type(value) in (int, float)


def _as_float(value: object) -> float:
    """The value of an exact int or float (never calls a student-defined method)."""
    return float.__new__(float, value) if type(value) is float else float(int.__index__(value))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Visible checks (form only)
# --------------------------------------------------------------------------

SLIPS = {
    "pounds_as_kg": "it looks as if the weight in pounds was used as kilograms: convert it to kilograms first",
    "per_minute": "this looks like a rate per minute: the question asks for a rate per hour",
    "no_bioavailability": (
        "it looks as if the whole dose was counted: "
        "only the bioavailable fraction (F) of an oral dose reaches the blood"
    ),
    "percent_not_fraction": (
        "it looks as if the percentages were used as they are: turn them into fractions first (divide by 100)"
    ),
    "mg_per_l_not_ng_per_ml": "this looks like mg·h/L: the question asks for ng·h/mL (1 mg/L = 1000 ng/mL)",
    "um_not_ng_per_ml": "this looks like a concentration in µM: the question asks for ng/mL (use the molar mass)",
    "s_ketamine_not_racemic": (
        "this looks like the occupancy of S-ketamine alone: "
        "the question asks about racemic ketamine (both enantiomers' Ki)"
    ),
    "from_infusion_end": "this looks like time counted from the end of the infusion: count from its start",
}
"""Slips a question can name, each with what the learner is told when the answer shows it.

A hidden test names a slip by the wrong value it produces, computed beside the
key (``grade_number(..., slips={"pounds_as_kg": ...})``); a visible check names
one only from the factor it applies, and only when that factor is what took the
answer out of the plausible range (``check_number(..., scale_slips=...)``)."""

def check_choice(question: str, answer: object, options: str = "ABCD") -> None:
    """The answer is one capital letter among ``options``."""
    if answer is None:
        raise QuizCheckFailed(question, f"no answer yet: set it to one of {', '.join(repr(o) for o in options)}")
    if type(answer) is not str:
        raise QuizCheckFailed(
            question, f"write the letter as a string in quotes, e.g. \"{options[0]}\"; got {type(answer).__name__}"
        )
    if len(answer) == 1 and answer.upper() in options and answer not in options:
        raise QuizCheckFailed(question, f"use a capital letter: \"{answer.upper()}\", not \"{answer}\"")
    if answer not in tuple(options):
        raise QuizCheckFailed(question, f"{answer!r} is not one of {', '.join(repr(o) for o in options)}")
    _form_ok(question, "one of the letters offered")


_FACTORS = (
    (1000, "a factor of 1000 off: check µg vs mg, ng vs µg, or mg/L vs ng/mL"),
    (60, "a factor of 60 off: check minutes vs hours"),
)
"""Unit slips named from the range alone, when exactly one of them brings the value into range.
(A percentage for a fraction is named by ``fraction=True``; a question's own slips by ``scale_slips``.)"""


def _slip_by_factor(value: float, low: float, high: float, scale_slips: Mapping[str, float]) -> str | None:
    """The one slip of ``scale_slips`` whose factor, undone, brings ``value`` into the range; None if none or several
    do.

    >>> _slip_by_factor(0.08, 1, 30, {"per_minute": 1 / 60})
    'per_minute'
    >>> _slip_by_factor(40, 1, 30, {"per_minute": 1 / 60}) is None
    True
    """
    fits = [slip for slip, factor in scale_slips.items() if factor and low <= value / factor <= high]
    return fits[0] if len(fits) == 1 else None


def check_number(
    question: str,
    answer: object,
    unit: str,
    plausible: tuple[float, float],
    *,
    scale_slips: Mapping[str, float] | None = None,
    fraction: bool = False,
    not_a_fraction: bool = False,
    slips: object = None,  # noqa: ARG001 - ignored (see below)
) -> None:
    """The answer is a finite number, in ``unit``, inside a wide ``plausible`` range.

    Outside the range, the message names the slip that took it there, and only that one:

    * ``scale_slips`` maps a slip of :data:`SLIPS` to the factor it multiplies
      the right answer by (``{"per_minute": 1 / 60}``); it is named when undoing
      exactly one of these factors brings the value into the range;
    * ``fraction``: the answer is a fraction, so a value between 1 and 100 is a
      percentage typed for it;
    * ``not_a_fraction``: the answer is a quantity in ``unit``, so a value between
      0 and 1 is a fraction (such as the fraction remaining) typed for it;
    * otherwise a factor of 1000 or 60 is named when exactly one of them brings
      the value into the range; otherwise the range is given.

    ``slips`` is accepted and **ignored**: earlier releases passed fingerprints
    of wrong values, which let a student search for a slip's value (and so the
    answer) by trying numbers in their own kernel; their check cells still run,
    and recognise nothing. ``ketamine-grade check`` reports a quiz that passes it.
    """
    if answer is None:
        raise QuizCheckFailed(question, f"no answer yet: set it to a number in {unit}")
    if type(answer) is bool or not _is_real(answer):
        hint = " (no units or text, just the number)" if isinstance(answer, str) else ""
        raise QuizCheckFailed(
            question, f"the answer must be a number in {unit}{hint}; got {type(answer).__name__} {answer!r}"
        )
    value = _as_float(answer)
    if not math.isfinite(value):
        raise QuizCheckFailed(question, f"the answer is {value}: a finite number is needed")
    low, high = plausible
    if fraction and 1 < abs(value) <= 100:
        raise QuizCheckFailed(
            question, "this looks like a percentage: give a fraction between 0 and 1 (e.g. 0.25, not 25)"
        )
    if not_a_fraction and 0 < value <= 1 and not low <= value <= high:
        raise QuizCheckFailed(
            question, f"this looks like a fraction (between 0 and 1), but the question asks for an amount in {unit}"
        )
    if low <= value <= high:
        _form_ok(question, f"a number in {unit}, in a plausible range")
        return
    scaled = _slip_by_factor(value, low, high, scale_slips or {})
    if scaled is not None:
        raise QuizCheckFailed(question, SLIPS[scaled])
    if value <= 0 < low:
        raise QuizCheckFailed(question, f"{value:g} {unit} is not plausible: it must be positive")
    fits = [text for factor, text in _FACTORS if low <= value / factor <= high or low <= value * factor <= high]
    detail = fits[0] if len(fits) == 1 else f"expected something between {low:g} and {high:g} {unit}"
    raise QuizCheckFailed(question, f"{value:g} {unit} is not plausible: {detail}")


def check_function(question: str, function: object, example_args: Sequence[Any], returns: str = "a number") -> None:
    """The answer is a function that accepts the example arguments and returns a finite number."""
    if not callable(function):
        raise QuizCheckFailed(question, f"define the function first (got {type(function).__name__})")
    try:
        result = function(*example_args)
    except NotImplementedError:
        raise QuizCheckFailed(
            question, "the function still raises NotImplementedError: replace that line with your code"
        ) from None
    except Exception as error:  # the student's code failed: report it plainly
        raise QuizCheckFailed(
            question, f"calling it with {tuple(example_args)} raised {type(error).__name__}: {error}"
        ) from None
    if type(result) is bool or not _is_real(result) and not _is_numpy_real(result):
        raise QuizCheckFailed(question, f"it should return {returns}; it returned {type(result).__name__} {result!r}")
    _form_ok(question, f"the function runs and returns {returns}")


def _is_numpy_real(value: object) -> bool:
    return numpy_number_type(type(value)) is not None


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


ROUNDING_REL = 1e-6
"""A relative tolerance below this only absorbs floating-point rounding: the answer must be the expected value."""


def _off_by(rel: float, abs_tol: float) -> str:
    """What "wrong" meant for a number, in words (a rounding-sized tolerance is no tolerance to the student).

    >>> _off_by(0.01, 0.0), _off_by(0.0, 0.0), _off_by(0.0, 0.5), _off_by(1e-9, 0.0)
    ('not within 1% of the expected value', 'not the expected value', 'not within 0.5 of the expected value', \
'not the expected value')
    >>> _off_by(0.005, 0.1), _off_by(1 / 3000, 0.0)
    ('not within 0.5% or 0.1 of the expected value', 'not within 0.0333% of the expected value')
    """
    within = [f"{100 * rel:.3g}%"] if rel >= ROUNDING_REL else []
    within += [f"{abs_tol:g}"] if abs_tol > 0 else []
    return f"not within {' or '.join(within)} of the expected value" if within else "not the expected value"


def grade_number(
    question: str,
    answer: object,
    expected: float,
    why: str,
    rel: float = 0.01,
    abs_tol: float = 0.0,
    *,
    slips: Mapping[str, float] | None = None,
) -> None:
    """Full marks for a number within ``rel`` (relative) or ``abs_tol`` of the key.

    ``slips`` maps a slip of :data:`SLIPS` to the wrong value it produces
    (computed in the hidden test beside the key): a wrong answer within the
    same tolerance of one is told which slip it shows.
    """
    if type(answer) is bool or not _is_real(answer):
        raise QuizCheckFailed(question, f"not a number. {why}")
    value = _as_float(answer)
    if _close(value, float(expected), rel, abs_tol):
        _ok(question, "correct")
        return
    for slip, wrong in (slips or {}).items():
        if _close(value, float(wrong), rel, abs_tol) and not _close(float(wrong), float(expected), rel, abs_tol):
            raise QuizCheckFailed(question, f"{SLIPS[slip]}. {why}")
    raise QuizCheckFailed(question, f"{_off_by(rel, abs_tol)}. {why}")


def failure_words(error: Exception) -> str:
    """How a student's function failed a hidden case, in words.

    In the grader, a call of the student's function runs in their kernel, and
    its failure comes back as ``StudentError`` (the grader's own class, never
    named to the student): ``"<kind>: <message>"`` for an exception the
    function raised (only its kind is said: the message may quote the hidden
    case), ``"not run: ..."`` for a call stopped by the time limit, and the
    grader's own words otherwise.
    """
    if type(error).__name__ != "StudentError":
        return f"raised {type(error).__name__}"
    text = str(error).removeprefix("StudentError:").strip()
    if "KeyboardInterrupt" in text or "time limit" in text or text.startswith("not run"):
        return "did not finish in the time the grader allows"
    kind = text.split(":", 1)[0].strip()
    if kind.isidentifier():
        return f"raised {kind}"
    return f"could not be checked: {text}" if text else "could not be checked"


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
            raise QuizCheckFailed(
                question, f"hidden case {number}: your function {failure_words(error)}. {why}"
            ) from None
        if type(result) is bool or not (_is_real(result) or _is_numpy_real(result)):
            raise QuizCheckFailed(
                question, f"hidden case {number} returned {type(result).__name__}, not a number. {why}"
            )
        value = float(result) if _is_numpy_real(result) else _as_float(result)
        same_infinity = math.isinf(expected) and value == expected
        if not same_infinity and not _close(value, expected, rel, abs_tol):
            raise QuizCheckFailed(question, f"hidden case {number} gives a different value. {why}")
    _ok(question, "correct on every hidden case")
