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

Only data crosses: ``None``, ``bool``, ``int``, ``float``, ``str``, lists,
tuples, dicts, sets, NumPy arrays and scalars of numbers, pandas Series and
DataFrames, each of its **exact** type (a subclass, a proxy or an object with
its own ``__eq__`` is described as unsupported and equals nothing), functions
as a name to call back, modules as a name. The grader rebuilds genuine
objects of its own from the description, so nothing the kernel does reaches
the grader as code or as an object that lies. Everything read back is treated
as hostile: lines too long, nested too deep, or holding numbers too big to
parse are refused for that one question.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

__all__ = [
    "RECORD_MARKER", "MAX_RECORD_CHARS", "Unsupported", "encode", "decode", "record_answers", "call", "parse_record",
    "MalformedRecord",
]

RECORD_MARKER = "\u241eketamine-quiz-record "
"""Prefix of the lines :func:`record_answers` and :func:`call` print; the grader removes them from the output."""

MAX_RECORD_CHARS = 2_000_000
"""A record line longer than this is refused."""

MAX_STRING_CHARS = 100_000
MAX_ITEMS = 200_000
"""Numbers, strings and containers one record may describe in all."""
MAX_DEPTH = 32

_MISSING = object()
NUMPY_FLOATS = ("float64", "float32", "float16")
NUMPY_INTEGERS = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")
"""The NumPy number types the course knows (the one list: the checks and the wire format both read it)."""
_NUMERIC_DTYPES = {name: name for name in (*NUMPY_FLOATS, *NUMPY_INTEGERS, "bool_", "bool")}
"""NumPy types a value may cross as, by the grader's own string for each (a name from the kernel only selects one)."""


def numpy_number_type(kind: type) -> str | None:
    """``"float"`` or ``"int"`` for a NumPy number type the course knows (``bool_`` is not a number), else None."""
    if kind.__module__ != "numpy":
        return None
    return "float" if kind.__name__ in NUMPY_FLOATS else "int" if kind.__name__ in NUMPY_INTEGERS else None


class MalformedRecord(ValueError):
    """A record line that cannot be read as the grader's format; says why in words."""


class Unsupported:
    """An answer of a kind the grader does not rebuild: it equals nothing and cannot be used as a number."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{self.name} object>"


# --------------------------------------------------------------------------
# Describing a value (kernel side, and the grader's arguments for a call)
# --------------------------------------------------------------------------


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _pandas() -> Any:
    return sys.modules.get("pandas")


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_ITEMS

    def take(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise OverflowError("too large to record")


def _real(value: float) -> dict[str, Any]:
    return {"type": "float", "value": value} if math.isfinite(value) else {"type": "nonfinite", "value": repr(value)}


def _column_values(values: Any) -> Any:
    """A pandas column's values as the encoder takes them: a numeric array as it is, any other (text, mixed) as a
    list."""
    return values if values.dtype.kind in "biuf" else values.tolist()


def _encode(value: object, budget: _Budget, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise OverflowError("nested too deeply to record")
    budget.take()
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
    if kind is float:
        return _real(float.__float__(value))  # type: ignore[arg-type]
    if kind is str:
        text = str.__str__(value)  # type: ignore[arg-type,unused-ignore]
        budget.take(len(text) // 100)
        return {"type": "str", "value": text[:MAX_STRING_CHARS]}
    if kind in (list, tuple):
        items: Any = list.__iter__(value) if kind is list else tuple.__iter__(value)  # type: ignore[arg-type]
        return {"type": kind.__name__, "items": [_encode(item, budget, depth + 1) for item in items]}
    if kind in (set, frozenset):
        members: Any = set.__iter__(value) if kind is set else frozenset.__iter__(value)  # type: ignore[arg-type]
        return {"type": kind.__name__, "items": [_encode(item, budget, depth + 1) for item in members]}
    if kind is dict:
        pairs: Any = dict.items(value)  # type: ignore[arg-type]
        return {
            "type": "dict", "items": [[_encode(k, budget, depth + 1), _encode(v, budget, depth + 1)] for k, v in pairs]
        }
    numpy = _numpy()
    if numpy is not None and kind is numpy.ndarray and value.dtype.kind in "biuf":  # type: ignore[attr-defined]
        array = value
        budget.take(int(array.size))  # type: ignore[attr-defined]
        return {
            "type": "ndarray", "dtype": str(array.dtype), "shape": list(array.shape),  # type: ignore[attr-defined]
            "data": numpy.ravel(array).tolist(),
        }
    if numpy is not None and numpy_number_type(kind) == "float" and getattr(numpy, kind.__name__) is kind:
        return {"type": "npscalar", "dtype": kind.__name__, "value": _real(float(value))}  # type: ignore[arg-type]
    if (
        numpy is not None and (numpy_number_type(kind) == "int" or kind is numpy.bool_)
        and getattr(numpy, kind.__name__) is kind
    ):
        return {"type": "npscalar", "dtype": kind.__name__, "value": _encode(value.item(), budget, depth + 1)}  # type: ignore[attr-defined]
    pandas = _pandas()
    if pandas is not None and kind is pandas.Series:
        series = value
        return {
            "type": "series",
            "name": _encode(series.name, budget, depth + 1),  # type: ignore[attr-defined]
            "index": _encode(list(series.index), budget, depth + 1),  # type: ignore[attr-defined]
            "values": _encode(_column_values(series.to_numpy()), budget, depth + 1),  # type: ignore[attr-defined]
        }
    if pandas is not None and kind is pandas.DataFrame:
        frame = value
        return {
            "type": "frame",
            "columns": _encode(list(frame.columns), budget, depth + 1),  # type: ignore[attr-defined]
            "index": _encode(list(frame.index), budget, depth + 1),  # type: ignore[attr-defined]
            "data": [_encode(_column_values(frame[column].to_numpy()), budget, depth + 1) for column in frame.columns],  # type: ignore[attr-defined,index]
        }
    if value is _MISSING:
        return {"type": "missing"}
    if kind.__name__ == "module":
        return {"type": "module", "name": str(getattr(value, "__name__", ""))[:200]}
    if kind.__name__ in ("function", "builtin_function_or_method", "method", "functools.partial", "partial"):
        return {"type": "callable"}
    return {"type": "unsupported", "name": kind.__name__[:100]}


def encode(value: object) -> dict[str, Any]:
    """A JSON description of a value, for exact types only (no method of a student's class is called)."""
    try:
        return _encode(value, _Budget(), 0)
    except (OverflowError, RecursionError, ValueError) as error:
        return {"type": "unsupported", "name": f"value ({error})"}


# --------------------------------------------------------------------------
# Rebuilding a value (the grader's side, and a call's arguments in the kernel)
# --------------------------------------------------------------------------


def _decode(encoded: Any, depth: int) -> Any:
    if depth > MAX_DEPTH or not isinstance(encoded, dict):
        return Unsupported("malformed")
    kind = encoded.get("type")
    value = encoded.get("value")
    items = encoded.get("items")
    if kind in ("none", "missing"):
        return None
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int:
        return value
    if kind == "float" and isinstance(value, (int, float)) and type(value) is not bool:
        return float(value)
    if kind == "nonfinite" and value in ("nan", "inf", "-inf"):
        return float(str(value))
    if kind == "str" and type(value) is str:
        return value
    if kind in ("list", "tuple", "set", "frozenset") and isinstance(items, list):
        decoded = [_decode(item, depth + 1) for item in items]
        if kind in ("set", "frozenset"):
            if not _hashes_spread(decoded):
                return Unsupported(kind)
            try:
                return set(decoded) if kind == "set" else frozenset(decoded)
            except TypeError:
                return Unsupported(kind)
        return decoded if kind == "list" else tuple(decoded)
    if kind == "dict" and isinstance(items, list):
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in items):
            return Unsupported("dict")
        keys = [_decode(pair[0], depth + 1) for pair in items]
        if not _hashes_spread(keys):
            return Unsupported("dict")
        result = {}
        for key, pair in zip(keys, items, strict=True):
            try:
                result[key] = _decode(pair[1], depth + 1)
            except TypeError:
                return Unsupported("dict")
        return result
    if kind == "ndarray":
        import numpy

        try:
            dtype_name = _NUMERIC_DTYPES.get(str(encoded.get("dtype")))  # the grader's own name, never the kernel's
            if dtype_name is None:
                return Unsupported("ndarray")
            dtype = numpy.dtype(dtype_name)
            return numpy.array(encoded.get("data"), dtype=dtype).reshape([int(n) for n in encoded.get("shape", [])])
        except (TypeError, ValueError, OverflowError):
            return Unsupported("ndarray")
    if kind == "npscalar":
        import numpy

        scalar_name = _NUMERIC_DTYPES.get(str(encoded.get("dtype")))
        inner = _decode(value, depth + 1)
        if scalar_name is None or isinstance(inner, Unsupported):
            return Unsupported("numpy scalar")
        try:
            return getattr(numpy, scalar_name)(inner)
        except (TypeError, ValueError, OverflowError):
            return Unsupported("numpy scalar")
    if kind in ("series", "frame"):
        import pandas

        try:
            index = _decode(encoded.get("index"), depth + 1)
            if not _is_column(index):
                return Unsupported(kind)
            if kind == "series":
                values = _decode(encoded.get("values"), depth + 1)
                if not _is_column(values, len(index)):
                    return Unsupported(kind)
                return pandas.Series(values, index=index, name=_decode(encoded.get("name"), depth + 1))
            columns = _decode(encoded.get("columns"), depth + 1)
            data = [_decode(column, depth + 1) for column in encoded.get("data", [])]
            # every column as long as the index, as the kernel's encoder writes them: pandas would broadcast a
            # scalar or align a dict over the whole index, and a small record would become columns x rows cells
            if not (_is_column(columns) and all(_is_column(column, len(index)) for column in data)):
                return Unsupported(kind)
            return pandas.DataFrame(dict(zip(columns, data, strict=True)), index=index, columns=columns)
        except (TypeError, ValueError, OverflowError):
            return Unsupported(kind)
    return Unsupported(str(encoded.get("name", kind))[:100])


def _hashes_spread(keys: list[Any]) -> bool:
    """Whether keys have hashes spread enough to go into a set or dict in linear time.

    Numbers with one hash (multiples of 2**61 - 1, say) would make building
    the set quadratic: a megabyte of record, seconds of the grader's time
    that no limit of the kernel counts. Honest values almost never share a
    hash. Unhashable keys pass here and are refused when the set is built.
    """
    hashes = set()
    for key in keys:
        try:
            hashes.add(hash(key))
        except TypeError:
            return True
    return len(keys) < 64 or len(hashes) * 2 >= len(keys)


def _is_column(values: Any, length: int | None = None) -> bool:
    """Whether a decoded value is a flat sequence (a list, tuple or one-dimensional array), of ``length`` if given.

    A frame's or series' parts must be such sequences: then what the grader
    builds is never larger than the record the kernel printed.
    """
    import numpy

    if isinstance(values, numpy.ndarray):
        flat = values.ndim == 1
    else:
        flat = isinstance(values, (list, tuple))
    return flat and (length is None or len(values) == length)


def decode(encoded: Any) -> Any:
    """A genuine object rebuilt from a description (:class:`Unsupported` for anything else).

    The description comes from the student's kernel: whatever it holds, the
    result is a value or :class:`Unsupported`, never an exception (a record
    fails its own question only) and never larger than the record itself.
    """
    try:
        return _decode(encoded, 0)
    except RecursionError:
        return Unsupported("nested too deeply")
    except Exception:  # noqa: BLE001 - pandas and numpy raise many kinds (NotImplementedError for a float16 index): all mean "cannot rebuild"
        return Unsupported("malformed")


# --------------------------------------------------------------------------
# What runs in the kernel
# --------------------------------------------------------------------------


def _emit(payload: dict[str, Any]) -> None:
    print(RECORD_MARKER + json.dumps(payload))


def record_answers(grade_id: str, names: list[str], calls: dict[str, list[list[Any]]] | None = None) -> None:
    """Print one line describing the named values of the caller's namespace (called in place of a hidden test)."""
    namespace = sys._getframe(1).f_globals
    _emit({"grade_id": grade_id, "values": {name: encode(namespace.get(name, _MISSING)) for name in names}})


def call(grade_id: str, number: int, name: str, arguments: str) -> None:
    """Call the caller's function ``name`` on the arguments the grader sent; print one line with the result.

    The result (or the exception's kind and message) is described as data;
    what the function prints goes to the cell as it would in nbgrader.
    """
    namespace = sys._getframe(1).f_globals
    function = namespace.get(name, _MISSING)
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
