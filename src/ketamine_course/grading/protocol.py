"""The message format between a student's kernel and the grader.

The student's kernel loads this module (and nothing else of the grading
package): it must import without nbgrader. In place of each hidden-test region
the kernel runs :func:`record_answers`, which prints **one line**: the
:data:`RECORD_MARKER` followed by JSON describing the answer values the hidden
tests read and an answer function's results on the hidden inputs. The grader
parses that line with :func:`parse_record` and judges it in its own process.

Only plain values are described (exact ``None``, ``bool``, ``int``, ``float``,
``str``), so nothing the kernel does can reach the grader as code or as an
object whose ``==`` lies. Everything read back is treated as hostile: lines
that are too long, nested too deep or hold numbers too big to parse are
refused for that one question, never for the student's whole grading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["RECORD_MARKER", "MAX_RECORD_CHARS", "encode", "record_answers", "parse_record", "MalformedRecord"]

RECORD_MARKER = "\u241eketamine-quiz-record "
"""Prefix of the one line :func:`record_answers` prints; the grader removes it from the output."""

MAX_RECORD_CHARS = 200_000
"""A record line longer than this is refused (a quiz's answers fit in a few hundred characters)."""

MAX_STRING_CHARS = 1000
"""Strings are recorded up to this length (a quiz answer is a letter, a word or a short phrase)."""

_MISSING = object()


class MalformedRecord(ValueError):
    """A record line that cannot be read as the grader's format; says why in words."""


def _is_numpy_real(value: object) -> bool:
    name = type(value).__module__ + "." + type(value).__name__
    return name in ("numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32")


def encode(value: object) -> dict[str, Any]:
    """A JSON description of an answer, for exact builtin types only (no student method is called)."""
    kind = type(value)
    if value is None:
        return {"type": "none"}
    if kind is bool:
        return {"type": "bool", "value": bool.__bool__(value)}  # type: ignore[arg-type]
    if kind is int:
        number = int.__index__(value)  # type: ignore[arg-type]
        if abs(number) > 10**300:
            return {"type": "unsupported", "name": "int (too large)"}
        return {"type": "int", "value": number}
    if kind is float or _is_numpy_real(value):
        real = float(value)  # type: ignore[arg-type]
        return {"type": "float", "value": real} if math.isfinite(real) else {"type": "nonfinite", "value": repr(real)}
    if kind is str:
        return {"type": "str", "value": str.__str__(value)[:MAX_STRING_CHARS]}  # type: ignore[arg-type,unused-ignore]
    if value is _MISSING:
        return {"type": "missing"}
    return {"type": "unsupported", "name": kind.__name__[:100]}


def record_answers(grade_id: str, names: Sequence[str], calls: dict[str, list[list[Any]]]) -> None:
    """Print one line describing the named answers and the answer functions' results on the given inputs.

    Called in the kernel in place of a hidden test. The grader compares the
    values with the key in its own process, so nothing done in the kernel can
    change the key or the comparison.
    """
    import sys
    import warnings

    namespace = sys._getframe(1).f_globals
    values = {name: encode(namespace.get(name, _MISSING)) for name in names}
    results: dict[str, list[dict[str, Any]]] = {}
    for name, cases in calls.items():
        function = namespace.get(name, _MISSING)
        outcomes: list[dict[str, Any]] = []
        for args in cases:
            if not callable(function):
                outcomes.append({"args": args, "error": "NotCallable"})
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcomes.append({"args": args, "result": encode(function(*args))})
            except (Exception, SystemExit) as error:  # a timeout's KeyboardInterrupt still stops the cell
                outcomes.append({"args": args, "error": type(error).__name__[:100]})
        results[name] = outcomes
    print(RECORD_MARKER + json.dumps({"grade_id": grade_id, "values": values, "calls": results}))


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
    if not isinstance(payload.get("values", {}), dict) or not isinstance(payload.get("calls", {}), dict):
        raise MalformedRecord("the recorded answers were not in the grader's format")
    return payload
