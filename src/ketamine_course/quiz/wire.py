"""The message format between a student's kernel and the grader.

Part of the kernel side (:mod:`ketamine_course.quiz`), which the student's
kernel loads and which imports nothing of the grading wing: it must import
without nbgrader. The grader imports it too, to read what the kernel printed. In place of each hidden-test region
the kernel runs :func:`record_answers`, which prints **one line**: the
:data:`RECORD_MARKER` followed by JSON describing the values the hidden test
reads. While the hidden test runs in the grader, each call it makes to a
student's function is sent back to the kernel as :func:`call`, which prints one
such line with the result. The grader parses lines with :func:`parse_record`
and rebuilds values with :func:`decode`.

Only data crosses (:mod:`.values` says which kinds, and how each is
rebuilt as a genuine object of the grader's own), functions as a name to call
back, modules as a name; so nothing the kernel does reaches the grader as code
or as an object that lies. Everything read back is treated as hostile: lines
too long, nested too deep, or holding numbers too big to parse are refused for
that one question.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .values import MISSING, NUMPY_FLOATS, NUMPY_INTEGERS, Unsupported, decode, encode, numpy_number_type

__all__ = [
    "RECORD_MARKER", "MAX_RECORD_CHARS", "Unsupported", "encode", "decode", "record_answers", "call", "parse_record",
    "MalformedRecord", "numpy_number_type", "NUMPY_FLOATS", "NUMPY_INTEGERS",
]

RECORD_MARKER = "\u241eketamine-quiz-record "
"""Prefix of the lines :func:`record_answers` and :func:`call` print; the grader removes them from the output."""

MAX_RECORD_CHARS = 2_000_000
"""A record line longer than this is refused."""


class MalformedRecord(ValueError):
    """A record line that cannot be read as the grader's format; says why in words."""


# --------------------------------------------------------------------------
# What runs in the kernel
# --------------------------------------------------------------------------


def _emit(payload: dict[str, Any]) -> None:
    print(RECORD_MARKER + json.dumps(payload))


def record_answers(grade_id: str, names: list[str], calls: dict[str, list[list[Any]]] | None = None) -> None:
    """Print one line describing the named values of the caller's namespace (called in place of a hidden test)."""
    namespace = sys._getframe(1).f_globals
    _emit({"grade_id": grade_id, "values": {name: encode(namespace.get(name, MISSING)) for name in names}})


def call(grade_id: str, number: int, name: str, arguments: str) -> None:
    """Call the caller's function ``name`` on the arguments the grader sent; print one line with the result.

    The result (or the exception's kind and message) is described as data;
    what the function prints goes to the cell as it would in nbgrader.
    """
    namespace = sys._getframe(1).f_globals
    function = namespace.get(name, MISSING)
    try:
        payload = json.loads(arguments)
        args = decode(payload.get("args"))
        kwargs = decode(payload.get("kwargs"))
        if not callable(function):
            raise TypeError(f"{name} is not a function")
        result = function(*args, **kwargs)
        record: dict[str, Any] = {"result": encode(result)}
    except (Exception, SystemExit) as error:  # the student's code failed: the grader sees the failure
        record = {"error": type(error).__name__[:100], "message": str(error)[:500]}
    _emit({"grade_id": grade_id, "call": number, **record})


def parse_record(line: str) -> dict[str, Any]:
    """Read one record line (without its marker); raise :class:`MalformedRecord` with a reason in words."""
    if len(line) > MAX_RECORD_CHARS:
        raise MalformedRecord(f"the recorded answers were longer than {MAX_RECORD_CHARS} characters")
    try:
        payload = json.loads(line)
    except RecursionError:
        raise MalformedRecord("the recorded answers were nested too deeply to read") from None
    except ValueError as error:  # invalid JSON, or an integer with more digits than Python converts
        raise MalformedRecord(f"the recorded answers could not be read ({str(error)[:80]})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("grade_id"), str):
        raise MalformedRecord("the recorded answers were not in the grader's format")
    if not isinstance(payload.get("values", {}), dict):
        raise MalformedRecord("the recorded answers were not in the grader's format")
    return payload
