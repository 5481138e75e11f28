"""Values as data: how an answer crosses from the student's kernel to the grader, and is rebuilt there.

Part of the kernel side (:mod:`ketamine_course.quiz`): the kernel describes a
value with :func:`encode`, the grader rebuilds it with :func:`decode`. Only
data crosses, and the grader rebuilds **genuine objects of its own**, so a
hidden test compares them exactly as it would in the student's kernel:

* Python's own values: ``None``, ``bool``, ``int``, ``float``, ``complex``,
  ``str``, ``bytes``, lists, tuples, named tuples, dicts, sets, ranges,
  slices, ``Ellipsis``; ``Decimal``, ``Fraction``; dates, times, datetimes
  (with their UTC offset) and timedeltas;
* NumPy arrays of any shape of numbers, booleans, complex numbers, text,
  dates and durations (with their unit) or objects (each item described in
  turn), and NumPy scalars of those kinds;
* pandas ``Series``, ``DataFrame`` and ``Index`` (``RangeIndex``,
  ``MultiIndex``, a datetime index, names of index and columns), with each
  column's dtype: NumPy dtypes, ``category``, ``string``, the nullable
  ``Int64``/``Float64``/``boolean`` and time-zone-aware datetimes;
  ``Timestamp``, ``Timedelta``, ``NaT`` and ``NA``;
* an instance of the student's own class, as a :class:`StudentObject`: its
  attributes can be read and compared (``answer.weight_kg == 70``); two of
  them are equal as the dataclass rule has it (same class, equal fields), and
  only for dataclasses; its methods cannot be called. The class itself crosses
  as a function to call back, so ``answer == Patient(70.0)`` compares as in
  the kernel for a dataclass.

Each value is described by its **exact** type: a subclass, a proxy or an
object with its own ``__eq__`` is described as unsupported and equals nothing
(a type name from the kernel only ever selects one of the grader's own, from
lists written here). Everything read back is treated as hostile: the grader
never builds anything larger than the description, and a malformed
description gives :class:`Unsupported`, never an exception.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import fractions
import math
import re
import sys
from typing import Any

__all__ = [
    "Unsupported", "StudentObject", "encode", "decode", "numpy_number_type", "unsupported_parts",
    "NUMPY_FLOATS", "NUMPY_INTEGERS",
]

MAX_STRING_CHARS = 100_000
MAX_ITEMS = 200_000
"""Numbers, strings and containers one description may hold in all."""
MAX_DEPTH = 32
MAX_FIELDS = 256
"""Fields of a named tuple, attributes of an object."""

MISSING = object()
"""Stands for a name the student's namespace does not hold."""
NUMPY_FLOATS = ("float64", "float32", "float16")
NUMPY_INTEGERS = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")
"""The NumPy number types the course knows (the one list: the checks and the descriptions both read it)."""
NUMPY_COMPLEX = ("complex128", "complex64")
_REAL_DTYPES = {name: name for name in (*NUMPY_FLOATS, *NUMPY_INTEGERS, "bool")}
"""NumPy types a value may cross as, by the grader's own string for each (a name from the kernel only selects one)."""
_TIME_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns")
_TIME_DTYPES = {f"{kind}[{unit}]": f"{kind}[{unit}]" for kind in ("datetime64", "timedelta64") for unit in _TIME_UNITS}
_MASKED_DTYPES = {
    name: name for name in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32",
                            "Float64", "boolean")
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")


def numpy_number_type(kind: type) -> str | None:
    """``"float"`` or ``"int"`` for a NumPy number type the course knows (``bool_`` is not a number), else None."""
    if kind.__module__ != "numpy":
        return None
    return "float" if kind.__name__ in NUMPY_FLOATS else "int" if kind.__name__ in NUMPY_INTEGERS else None


class Unsupported:
    """An answer of a kind the grader does not rebuild: it equals nothing and cannot be used as a number."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{self.name} object>"


class StudentObject:
    """An instance of a student's class, rebuilt as its attributes: readable, comparable as a dataclass, not callable.

    >>> a = StudentObject("Patient", {"weight_kg": 70.0}, dataclass_eq=True)
    >>> a.weight_kg, a == StudentObject("Patient", {"weight_kg": 70.0}, dataclass_eq=True), a == 70.0
    (70.0, True, False)
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, class_name: str, attributes: dict[str, Any], dataclass_eq: bool = False) -> None:
        object.__setattr__(self, "_class_name", class_name)
        object.__setattr__(self, "_attributes", dict(attributes))
        object.__setattr__(self, "_dataclass_eq", dataclass_eq)

    def __getattr__(self, name: str) -> Any:
        attributes = object.__getattribute__(self, "_attributes")
        if name in attributes:
            return attributes[name]
        class_name = object.__getattribute__(self, "_class_name")
        raise AttributeError(f"'{class_name}' object has no attribute '{name}' the grader could read")

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_attributes")[name] = value

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, StudentObject) or not self._dataclass_eq or not other._dataclass_eq:
            return False
        return bool(self._class_name == other._class_name and self._attributes == other._attributes)

    def __repr__(self) -> str:
        if self._dataclass_eq:
            fields = ", ".join(f"{k}={v!r}" for k, v in self._attributes.items())
            return f"{self._class_name}({fields})"
        return f"<{self._class_name} object>"


# --------------------------------------------------------------------------
# Describing a value (kernel side, and the grader's arguments for a call)
# --------------------------------------------------------------------------


def _module(name: str) -> Any:
    """A library the student's code already imported (never imported here: the kernel may not have it)."""
    return sys.modules.get(name)


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_ITEMS

    def take(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise OverflowError("too large to record")


def _real(value: float) -> dict[str, Any]:
    return {"type": "float", "value": value} if math.isfinite(value) else {"type": "nonfinite", "value": repr(value)}


def _encode_array(array: Any, budget: _Budget, depth: int) -> dict[str, Any]:
    """A NumPy array of a kind the grader rebuilds; anything else unsupported."""
    numpy = _module("numpy")
    budget.take(int(array.size))
    head = {"type": "ndarray", "shape": [int(n) for n in array.shape]}
    kind, flat = array.dtype.kind, numpy.ravel(array)
    if kind in "biuf":
        return {**head, "dtype": str(array.dtype), "data": flat.tolist()}
    if kind == "c":
        return {**head, "dtype": str(array.dtype), "data": [[_real(z.real), _real(z.imag)] for z in flat.tolist()]}
    if kind in "Mm":
        return {**head, "dtype": str(array.dtype), "data": flat.view("int64").tolist()}
    if kind == "U":
        budget.take(sum(len(text) for text in flat.tolist()) // 100)
        return {**head, "dtype": "str", "data": [text[:MAX_STRING_CHARS] for text in flat.tolist()]}
    if kind == "O":
        return {**head, "dtype": "object", "items": [_encode(item, budget, depth + 1) for item in flat.tolist()]}
    return {"type": "unsupported", "name": f"array of {str(array.dtype)[:40]}"}


def _encode_extension(values: Any, budget: _Budget, depth: int) -> dict[str, Any]:
    """A pandas column's values (or an Index's), with their dtype."""
    pandas, numpy = _module("pandas"), _module("numpy")
    dtype = values.dtype
    if isinstance(dtype, numpy.dtype) or type(values) is pandas.arrays.NumpyExtensionArray:
        return _encode_array(values.to_numpy(), budget, depth)
    budget.take(len(values))
    if isinstance(dtype, pandas.CategoricalDtype):
        return {
            "type": "categorical", "ordered": bool(dtype.ordered),
            "categories": _encode_index(dtype.categories, budget, depth + 1),
            "codes": values.codes.tolist(),
        }
    if isinstance(dtype, pandas.StringDtype):
        return {
            "type": "strings", "storage": str(dtype.storage), "na": "NA" if dtype.na_value is pandas.NA else "nan",
            "data": [text if isinstance(text, str) else None for text in values.tolist()],
        }
    if isinstance(dtype, pandas.DatetimeTZDtype):
        return {"type": "datetimetz", "unit": str(dtype.unit), "tz": str(dtype.tz), "data": values.asi8.tolist()}
    if str(dtype) in _MASKED_DTYPES:
        items = [None if item is pandas.NA else item for item in values.tolist()]  # Python scalars, NA as None
        return {"type": "masked", "dtype": str(dtype), "data": [_encode(item, budget, depth + 1) for item in items]}
    return {"type": "unsupported", "name": f"column of {str(dtype)[:40]}"}


def _encode_index(index: Any, budget: _Budget, depth: int) -> dict[str, Any]:
    pandas = _module("pandas")
    kind = type(index)
    names = [_encode(name, budget, depth + 1) for name in index.names]
    if kind is pandas.RangeIndex:
        return {"type": "rangeindex", "start": index.start, "stop": index.stop, "step": index.step, "names": names}
    if kind is pandas.MultiIndex:
        budget.take(len(index) * index.nlevels)
        return {
            "type": "multiindex", "names": names,
            "levels": [_encode_index(level, budget, depth + 1) for level in index.levels],
            "codes": [codes.tolist() for codes in index.codes],
        }
    if kind in (pandas.Index, pandas.DatetimeIndex, pandas.TimedeltaIndex, pandas.CategoricalIndex):
        freq = getattr(index, "freqstr", None)
        return {
            "type": "index", "names": names, "values": _encode_extension(index.array, budget, depth + 1),
            **({"freq": str(freq)[:40]} if freq else {}),
        }
    return {"type": "unsupported", "name": kind.__name__[:100]}


def _encode_pandas(value: object, kind: type, budget: _Budget, depth: int) -> dict[str, Any] | None:
    pandas = _module("pandas")
    if pandas is None:
        return None
    if kind is pandas.Series:
        series: Any = value
        return {
            "type": "series", "name": _encode(series.name, budget, depth + 1),
            "index": _encode_index(series.index, budget, depth + 1),
            "values": _encode_extension(series.array, budget, depth + 1),
        }
    if kind is pandas.DataFrame:
        frame: Any = value
        return {
            "type": "frame",
            "columns": _encode_index(frame.columns, budget, depth + 1),
            "index": _encode_index(frame.index, budget, depth + 1),
            "data": [_encode_extension(frame.iloc[:, i].array, budget, depth + 1) for i in range(frame.shape[1])],
        }
    if kind in (pandas.Index, pandas.RangeIndex, pandas.MultiIndex, pandas.DatetimeIndex, pandas.TimedeltaIndex,
                pandas.CategoricalIndex):
        return _encode_index(value, budget, depth)
    if kind is pandas.Timestamp:
        stamp: Any = value
        return {"type": "timestamp", "unit": stamp.unit, "value": stamp.value, "tz": str(stamp.tz or "")}
    if kind is pandas.Timedelta:
        delta: Any = value
        return {"type": "pdtimedelta", "unit": delta.unit, "value": delta.value}
    if value is pandas.NaT:
        return {"type": "nat"}
    if value is pandas.NA:
        return {"type": "na"}
    return None


def _encode_numpy_scalar(value: object, kind: type, budget: _Budget, depth: int) -> dict[str, Any] | None:
    numpy = _module("numpy")
    if numpy is None or kind.__module__ != "numpy" or getattr(numpy, kind.__name__, None) is not kind:
        return None
    scalar: Any = value
    if kind is numpy.ndarray:
        return _encode_array(scalar, budget, depth)
    if kind.__name__ in (*NUMPY_FLOATS, *NUMPY_INTEGERS, "bool", "bool_", *NUMPY_COMPLEX, "str_", "bytes_"):
        name = "bool" if kind.__name__ == "bool_" else kind.__name__
        return {"type": "npscalar", "dtype": name, "value": _encode(scalar.item(), budget, depth + 1)}
    if kind in (numpy.datetime64, numpy.timedelta64):
        unit = numpy.datetime_data(scalar.dtype)[0]
        return {"type": "nptime", "dtype": f"{kind.__name__}[{unit}]", "value": int(scalar.view("int64"))}
    return None


def _encode_object(value: object, kind: type, budget: _Budget, depth: int) -> dict[str, Any]:
    """An instance of a student's class: its class name and its own attributes (no method of it is called)."""
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except AttributeError:
        attributes = None
    if type(attributes) is not dict or len(attributes) > MAX_FIELDS:
        return {"type": "unsupported", "name": kind.__name__[:100]}
    params = kind.__dict__.get("__dataclass_params__")
    dataclass_eq = bool(params is not None and getattr(params, "eq", False) and "__eq__" in kind.__dict__
                        and dataclasses.is_dataclass(kind))
    return {
        "type": "object", "class": kind.__qualname__[:100], "eq": dataclass_eq,
        "attributes": {str(k)[:100]: _encode(v, budget, depth + 1) for k, v in dict.items(attributes)
                       if type(k) is str and _NAME.match(k)},
    }


def _encode(value: object, budget: _Budget, depth: int) -> dict[str, Any]:  # noqa: PLR0911, PLR0912, C901
    if depth > MAX_DEPTH:
        raise OverflowError("nested too deeply to record")
    budget.take()
    kind = type(value)
    if value is None:
        return {"type": "none"}
    if value is MISSING:
        return {"type": "missing"}
    if kind is bool:
        return {"type": "bool", "value": bool.__bool__(value)}  # type: ignore[arg-type]
    if kind is int:
        number = int.__index__(value)  # type: ignore[arg-type]
        if abs(number) > 10**300:
            return {"type": "unsupported", "name": "int (too large)"}
        return {"type": "int", "value": number}
    if kind is float:
        return _real(float.__float__(value))  # type: ignore[arg-type]
    if kind is complex:
        z = complex.__complex__(value)  # type: ignore[arg-type]
        return {"type": "complex", "real": _real(z.real), "imag": _real(z.imag)}
    if kind is str:
        text = str.__str__(value)  # type: ignore[arg-type,unused-ignore]
        budget.take(len(text) // 100)
        return {"type": "str", "value": text[:MAX_STRING_CHARS]}
    if kind is bytes:
        data = bytes(value)  # type: ignore[call-overload]
        budget.take(len(data) // 100)
        return {"type": "bytes", "hex": data[:MAX_STRING_CHARS].hex()}
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
    if kind is range:
        span: Any = value
        return {"type": "range", "items": [_encode(n, budget, depth + 1) for n in (span.start, span.stop, span.step)]}
    if kind is slice:
        cut: Any = value
        return {"type": "slice", "items": [_encode(n, budget, depth + 1) for n in (cut.start, cut.stop, cut.step)]}
    if value is Ellipsis:
        return {"type": "ellipsis"}
    if kind is decimal.Decimal:
        return {"type": "decimal", "value": str(value)[:1000]}
    if kind is fractions.Fraction:
        ratio: Any = value
        return {"type": "fraction", "items": [_encode(n, budget, depth + 1) for n in (ratio.numerator,
                                                                                        ratio.denominator)]}
    if kind in (datetime.date, datetime.datetime, datetime.time):
        return {"type": kind.__name__, "value": value.isoformat()}  # type: ignore[attr-defined]
    if kind is datetime.timedelta:
        delta: Any = value
        return {"type": "timedelta", "value": [delta.days, delta.seconds, delta.microseconds]}
    described = _encode_numpy_scalar(value, kind, budget, depth) or _encode_pandas(value, kind, budget, depth)
    if described is not None:
        return described
    if issubclass(kind, tuple) and type(getattr(kind, "_fields", None)) is tuple and kind.__bases__ == (tuple,):
        fields = [str(name)[:100] for name in kind._fields]  # type: ignore[attr-defined]
        entries: Any = tuple.__iter__(value)  # type: ignore[arg-type]
        return {
            "type": "namedtuple", "class": kind.__name__[:100], "fields": fields,
            "items": [_encode(item, budget, depth + 1) for item in entries],
        }
    if kind.__name__ == "module":
        return {"type": "module", "name": str(getattr(value, "__name__", ""))[:200]}
    if kind.__name__ in ("function", "builtin_function_or_method", "method", "functools.partial", "partial"):
        return _encode_callable(value)
    if kind is type and getattr(value, "__module__", None) == "__main__":
        return {"type": "callable"}  # a class the student defined: called in their kernel, its instances come back
    if kind.__module__ not in ("builtins", "numpy", "pandas") and not kind.__module__.startswith(("numpy.", "pandas.")):
        return _encode_object(value, kind, budget, depth)
    return {"type": "unsupported", "name": kind.__name__[:100]}


def _encode_callable(function: object) -> dict[str, Any]:
    """A function crosses as a name to call back; a course helper as its own name (the grader uses its own copy)."""
    module_name = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None)
    if isinstance(module_name, str) and isinstance(name, str) and module_name.startswith("ketamine_course."):
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, name, None) is function:
            return {"type": "callable", "course": f"{module_name}:{name}"}
    return {"type": "callable"}


def encode(value: object) -> dict[str, Any]:
    """A JSON description of a value, for exact types only (no method of a student's class is called)."""
    try:
        return _encode(value, _Budget(), 0)
    except (OverflowError, RecursionError, ValueError) as error:
        return {"type": "unsupported", "name": f"value ({error})"}


# --------------------------------------------------------------------------
# Rebuilding a value (the grader's side, and a call's arguments in the kernel)
# --------------------------------------------------------------------------


def _number(encoded: Any) -> float:
    """A real number from its description; ValueError for anything else."""
    kind, value = encoded.get("type") if isinstance(encoded, dict) else None, encoded.get("value") if isinstance(
        encoded, dict) else None
    if kind == "float" and isinstance(value, (int, float)) and type(value) is not bool:
        return float(value)
    if kind == "nonfinite" and value in ("nan", "inf", "-inf"):
        return float(str(value))
    raise ValueError("not a real number")


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("not an integer")
    return value


def _decode_array(encoded: dict[str, Any], depth: int) -> Any:
    import numpy

    shape = [_int(n) for n in encoded.get("shape", [])]
    dtype = str(encoded.get("dtype"))
    if dtype == "object":
        items = encoded.get("items")
        if not isinstance(items, list) or math.prod(shape) != len(items):
            return Unsupported("ndarray")
        array = numpy.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = _decode(item, depth + 1)
        return array.reshape(shape)
    data = encoded.get("data")
    if not isinstance(data, list) or math.prod(shape) != len(data):
        return Unsupported("ndarray")
    if dtype in _REAL_DTYPES:
        return numpy.array(data, dtype=numpy.dtype(_REAL_DTYPES[dtype])).reshape(shape)
    if dtype in NUMPY_COMPLEX:
        values = [complex(_number(pair[0]), _number(pair[1])) for pair in data]
        return numpy.array(values, dtype=numpy.dtype({"complex128": "complex128", "complex64": "complex64"}[dtype])
                           ).reshape(shape)
    if dtype in _TIME_DTYPES:
        return numpy.array([_int(n) for n in data], dtype="int64").view(_TIME_DTYPES[dtype]).reshape(shape)
    if dtype == "str":
        if not all(type(text) is str for text in data):
            return Unsupported("ndarray")
        return numpy.array(data, dtype=str).reshape(shape)
    return Unsupported("ndarray")


def _decode_index(encoded: Any, depth: int) -> Any:
    import pandas

    if not isinstance(encoded, dict):
        raise ValueError("not an index")
    kind = encoded.get("type")
    names = [_decode(name, depth + 1) for name in encoded.get("names", [None])]
    if kind == "rangeindex":
        index = pandas.RangeIndex(_int(encoded.get("start")), _int(encoded.get("stop")), _int(encoded.get("step")))
        if len(index) > MAX_ITEMS:  # small to describe, but a test that walks it would build every number
            raise ValueError("too long a range")
        index.name = names[0] if names else None
        return index
    if kind == "multiindex":
        levels = [_decode_index(level, depth + 1) for level in encoded.get("levels", [])]
        codes = [[_int(n) for n in column] for column in encoded.get("codes", [])]
        if not levels or len(levels) != len(codes) or len({len(c) for c in codes}) > 1:
            raise ValueError("malformed MultiIndex")
        return pandas.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=True)
    if kind == "index":
        values = _decode_column(encoded.get("values"), depth + 1)
        index = pandas.Index(values, name=names[0] if names else None)
        freq = encoded.get("freq")
        if isinstance(freq, str) and re.fullmatch(r"-?[0-9]{0,6}[A-Za-z]{1,6}(-[A-Za-z]{1,6})?", freq):
            if isinstance(index, (pandas.DatetimeIndex, pandas.TimedeltaIndex)):
                index = type(index)(index, freq=freq)  # pandas checks that the values follow it
        return index
    raise ValueError("not an index")


def _decode_column(encoded: Any, depth: int) -> Any:
    """A pandas column's values with their dtype (a flat array of either kind); ValueError when malformed."""
    import pandas

    if not isinstance(encoded, dict):
        raise ValueError("not a column")
    kind, data = encoded.get("type"), encoded.get("data")
    if kind == "ndarray":
        array = _decode_array(encoded, depth)
        if isinstance(array, Unsupported) or array.ndim != 1:
            raise ValueError("not a column")
        return array
    if kind == "categorical":
        categories = _decode_index(encoded.get("categories"), depth + 1)
        codes = [_int(n) for n in encoded.get("codes", [])]
        return pandas.Categorical.from_codes(codes, categories=categories, ordered=encoded.get("ordered") is True)
    if not isinstance(data, list):
        raise ValueError("not a column")
    if kind == "strings":
        storage = {"python": "python", "pyarrow": "pyarrow"}[str(encoded.get("storage"))]
        na_value = pandas.NA if encoded.get("na") == "NA" else math.nan
        if not all(text is None or type(text) is str for text in data):
            raise ValueError("not text")
        return pandas.array(data, dtype=pandas.StringDtype(storage, na_value=na_value))
    if kind == "datetimetz":
        unit = {u: u for u in ("s", "ms", "us", "ns")}[str(encoded.get("unit"))]
        tz = _time_zone(str(encoded.get("tz")))
        stamps = pandas.array([_int(n) for n in data], dtype=f"datetime64[{unit}]")
        return pandas.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(tz).array
    if kind == "masked":
        dtype = _MASKED_DTYPES[str(encoded.get("dtype"))]
        values = [_decode(item, depth + 1) for item in data]
        if any(isinstance(v, Unsupported) for v in values):
            raise ValueError("malformed column")
        return pandas.array(values, dtype=dtype)
    raise ValueError("not a column")


def _time_zone(name: str) -> Any:
    """The grader's own time zone for a name (``UTC`` or a zone of the system's database)."""
    import zoneinfo

    if name == "UTC":
        return datetime.UTC
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+){0,2}", name):
        raise ValueError("not a time zone")
    return zoneinfo.ZoneInfo(name)


def _decode_pandas(kind: str, encoded: dict[str, Any], depth: int) -> Any:
    import pandas

    if kind in ("rangeindex", "multiindex", "index"):
        return _decode_index(encoded, depth)
    if kind == "series":
        index = _decode_index(encoded.get("index"), depth + 1)
        values = _decode_column(encoded.get("values"), depth + 1)
        if len(values) != len(index):
            return Unsupported("series")
        return pandas.Series(values, index=index, name=_decode(encoded.get("name"), depth + 1), copy=False)
    if kind == "frame":
        index = _decode_index(encoded.get("index"), depth + 1)
        columns = _decode_index(encoded.get("columns"), depth + 1)
        data = encoded.get("data")
        if not isinstance(data, list) or len(data) != len(columns):
            return Unsupported("frame")
        arrays = [_decode_column(column, depth + 1) for column in data]
        # every column as long as the index, as the kernel's encoder writes them: pandas would broadcast a
        # scalar over the whole index, and a small record would become columns x rows cells
        if any(len(array) != len(index) for array in arrays):
            return Unsupported("frame")
        frame = pandas.DataFrame({i: array for i, array in enumerate(arrays)}, index=index)
        frame.columns = columns
        return frame
    if kind == "timestamp":
        unit = {u: u for u in ("s", "ms", "us", "ns")}[str(encoded.get("unit"))]
        stamp = pandas.Timestamp(_int(encoded.get("value")), unit="ns").as_unit(unit)
        tz = str(encoded.get("tz", ""))
        return stamp.tz_localize("UTC").tz_convert(_time_zone(tz)) if tz else stamp
    if kind == "pdtimedelta":
        unit = {u: u for u in ("s", "ms", "us", "ns")}[str(encoded.get("unit"))]
        return pandas.Timedelta(_int(encoded.get("value")), unit="ns").as_unit(unit)
    if kind == "nat":
        return pandas.NaT
    if kind == "na":
        return pandas.NA
    return None


def _decode_numpy(kind: str, encoded: dict[str, Any], depth: int) -> Any:
    import numpy

    if kind == "ndarray":
        return _decode_array(encoded, depth)
    if kind == "npscalar":
        names = {n: n for n in (*NUMPY_FLOATS, *NUMPY_INTEGERS, *NUMPY_COMPLEX, "bool", "str_", "bytes_")}
        name = names.get(str(encoded.get("dtype")))
        inner = _decode(encoded.get("value"), depth + 1)
        if name is None or isinstance(inner, Unsupported):
            return Unsupported("numpy scalar")
        return getattr(numpy, "bool_" if name == "bool" else name)(inner)
    if kind == "nptime":
        dtype = _TIME_DTYPES[str(encoded.get("dtype"))]
        return numpy.array([_int(encoded.get("value"))], dtype="int64").view(dtype)[0]
    return None


def _decode_python(kind: Any, encoded: dict[str, Any], depth: int) -> Any:  # noqa: PLR0911, PLR0912, C901
    value, items = encoded.get("value"), encoded.get("items")
    if kind in ("none", "missing"):
        return None
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int:
        return value
    if kind in ("float", "nonfinite"):
        return _number(encoded)
    if kind == "complex":
        return complex(_number(encoded.get("real")), _number(encoded.get("imag")))
    if kind == "str" and type(value) is str:
        return value
    if kind == "bytes":
        return bytes.fromhex(str(encoded.get("hex")))
    if kind == "ellipsis":
        return Ellipsis
    if kind == "decimal" and type(value) is str and len(value) <= 1000:
        return decimal.Decimal(value)
    if kind in ("date", "datetime", "time") and type(value) is str and len(value) <= 64:
        parse: dict[str, Any] = {
            "date": datetime.date.fromisoformat, "datetime": datetime.datetime.fromisoformat,
            "time": datetime.time.fromisoformat,
        }
        return parse[kind](value)
    if kind == "timedelta" and isinstance(value, list) and len(value) == 3:
        days, seconds, microseconds = (_int(n) for n in value)
        return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if not isinstance(items, list):
        return Unsupported(str(encoded.get("name", kind))[:100])
    if kind in ("range", "slice", "fraction"):
        parts = [_decode(item, depth + 1) for item in items]
        if kind == "slice" and len(parts) == 3:
            return slice(*parts)
        numbers = [_int(n) for n in parts]
        if kind == "fraction" and len(numbers) == 2:
            return fractions.Fraction(*numbers)
        if kind == "range" and len(numbers) == 3 and len(range(*numbers)) <= MAX_ITEMS:
            return range(*numbers)  # no longer than a list the description could hold
        return Unsupported(kind)
    if kind in ("list", "tuple", "set", "frozenset"):
        decoded = [_decode(item, depth + 1) for item in items]
        if kind in ("set", "frozenset"):
            if not _hashes_spread(decoded):
                return Unsupported(kind)
            try:
                return set(decoded) if kind == "set" else frozenset(decoded)
            except TypeError:
                return Unsupported(kind)
        return decoded if kind == "list" else tuple(decoded)
    if kind == "dict":
        return _decode_dict(items, depth)
    if kind == "namedtuple":
        return _decode_namedtuple(encoded, items, depth)
    return Unsupported(str(encoded.get("name", kind))[:100])


def _decode_dict(items: list[Any], depth: int) -> Any:
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


_NAMEDTUPLES: dict[tuple[str, tuple[str, ...]], type] = {}


def _decode_namedtuple(encoded: dict[str, Any], items: list[Any], depth: int) -> Any:
    import collections
    import keyword

    name, fields = str(encoded.get("class")), encoded.get("fields")
    if not (
        isinstance(fields, list) and len(fields) == len(items) <= MAX_FIELDS and _NAME.match(name)
        and all(type(f) is str and _NAME.match(f) and not keyword.iskeyword(f) and not f.startswith("_")
                for f in fields)
        and len(set(fields)) == len(fields) and not keyword.iskeyword(name)
    ):
        return Unsupported("namedtuple")
    key = (name, tuple(fields))
    if key not in _NAMEDTUPLES and len(_NAMEDTUPLES) < 1000:
        _NAMEDTUPLES[key] = collections.namedtuple(name, fields)  # noqa: PYI024
    kind = _NAMEDTUPLES.get(key)
    if kind is None:
        return Unsupported("namedtuple")
    return kind(*(_decode(item, depth + 1) for item in items))


def _decode(encoded: Any, depth: int) -> Any:
    if depth > MAX_DEPTH or not isinstance(encoded, dict):
        return Unsupported("malformed")
    kind = encoded.get("type")
    if kind == "object":
        attributes = encoded.get("attributes")
        if not isinstance(attributes, dict) or len(attributes) > MAX_FIELDS:
            return Unsupported("object")
        return StudentObject(
            str(encoded.get("class"))[:100],
            {str(k): _decode(v, depth + 1) for k, v in attributes.items() if _NAME.match(str(k))},
            dataclass_eq=encoded.get("eq") is True,
        )
    if kind in ("ndarray", "npscalar", "nptime"):
        return _decode_numpy(kind, encoded, depth)
    if kind in ("series", "frame", "rangeindex", "multiindex", "index", "timestamp", "pdtimedelta", "nat", "na"):
        return _decode_pandas(kind, encoded, depth)
    if kind in ("categorical", "strings", "datetimetz", "masked"):
        return Unsupported(str(kind))  # a column only crosses inside a Series, a DataFrame or an Index
    return _decode_python(kind, encoded, depth)


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


def unsupported_parts(value: Any, depth: int = 0) -> list[str]:
    """What in a rebuilt value the grader could not rebuild (``["Patient object"]``), for a message in words."""
    if depth > MAX_DEPTH:
        return []
    if isinstance(value, Unsupported):
        return [f"{value.name} object"]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [part for item in value for part in unsupported_parts(item, depth + 1)][:3]
    if isinstance(value, dict):
        return [part for item in value.values() for part in unsupported_parts(item, depth + 1)][:3]
    return []
