"""Load and validate the course's cited data tables.

Every number the course shows comes from a CSV file in ``data/``. Each table
has a schema below: its columns, their types, units (in the column name or a
``unit`` column checked against an allowed set) and plausible ranges. Every
row names its source in ``source_id`` (one id, or several separated by ``;``),
and every id must resolve to a row of ``references.csv``.

Tables are validated each time they are read; a problem raises
:class:`DataError` naming the file, the row and the column.

>>> routes = load_table("routes")
>>> routes.row("oral")["bioavailability_fraction"]
0.2
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DataError",
    "Table",
    "data_dir",
    "load_table",
    "table_names",
    "validate_all",
    "reference",
    "cite",
    "format_reference",
]

VERIFIED_LEVELS = ("yes", "secondary", "partial", "no", "derived")
"""How far a value was checked: ``yes`` read in the cited source (or a faithful
copy of it); ``secondary`` read only in a secondary reproduction; ``partial``
partly checked (the note says what is missing); ``no`` not checked; ``derived``
computed or calibrated by the course from cited values."""

UNVERIFIED_LEVELS = ("partial", "no")


class DataError(ValueError):
    """A data table is missing, malformed or cites an unknown source."""


def data_dir() -> Path:
    """Return the folder holding the course's CSV tables.

    ``KETAMINE_COURSE_DATA`` overrides it (the tests use this to validate
    corrupted copies). Otherwise the copy bundled in an installed wheel is
    used, or, for a source checkout or editable install, ``data/`` at the
    repository root.
    """
    override = os.environ.get("KETAMINE_COURSE_DATA")
    if override:
        return Path(override)
    bundled = Path(__file__).with_name("data")
    if (bundled / "references.csv").is_file():
        return bundled
    return Path(__file__).resolve().parents[2] / "data"


# --------------------------------------------------------------------------
# Column types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a table: how to parse it and what values are allowed."""

    name: str
    kind: str = "str"  # str, int, float, bool, date, choice, ids
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None


def _parse(column: Column, raw: str) -> Any:
    """Parse one cell; raise ValueError with a reason on bad input."""
    text = raw.strip()
    if text == "":
        if column.required:
            raise ValueError("is empty but required")
        return None
    if column.kind in ("str", "ids"):
        value: Any = text
    elif column.kind == "int":
        if not re.fullmatch(r"-?\d+", text):
            raise ValueError(f"{text!r} is not a whole number")
        value = int(text)
    elif column.kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
    elif column.kind == "bool":
        if text not in ("True", "False"):
            raise ValueError(f"{text!r} is not True or False")
        value = text == "True"
    elif column.kind == "date":
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)")
        value = text
    elif column.kind == "choice":
        if text not in column.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(column.choices)}")
        value = text
    else:  # pragma: no cover - a schema error, not a data error
        raise AssertionError(f"unknown column kind {column.kind}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if column.minimum is not None and value < column.minimum:
            raise ValueError(f"{value} is below the minimum {column.minimum}")
        if column.maximum is not None and value > column.maximum:
            raise ValueError(f"{value} is above the maximum {column.maximum}")
    if column.pattern and isinstance(value, str) and not re.fullmatch(column.pattern, value):
        raise ValueError(f"{value!r} does not match the expected form {column.pattern}")
    return value


def _text(name: str, required: bool = True) -> Column:
    return Column(name, "str", required)


def _num(name: str, lo: float | None = None, hi: float | None = None, required: bool = True) -> Column:
    return Column(name, "float", required, lo, hi)


def _int(name: str, lo: float | None = None, hi: float | None = None, required: bool = True) -> Column:
    return Column(name, "int", required, lo, hi)


def _choice(name: str, *choices: str, required: bool = True) -> Column:
    return Column(name, "choice", required, choices=choices)


_ID = r"[a-z0-9_]+"
_VERIFIED = _choice("verified", *VERIFIED_LEVELS)
_SOURCE = Column("source_id", "ids", pattern=rf"{_ID}(;{_ID})*")
_NOTE = _text("note", required=False)


# --------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """Schema of one table: its columns, key and any row-level rule."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    row_check: Callable[[dict[str, Any]], None] | None = None
    description: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


def _check_reference(row: dict[str, Any]) -> None:
    if row["verified"] in ("yes", "secondary") and not (row["doi"] or row["url"]):
        raise _RowError("doi", "a reference marked verified needs a DOI or an official URL")


def _check_band(row: dict[str, Any]) -> None:
    if row["low_ng_per_ml"] > row["high_ng_per_ml"]:
        raise _RowError("high_ng_per_ml", "is below low_ng_per_ml")


def _check_route(row: dict[str, Any]) -> None:
    lo, hi, f = row["bioavailability_low"], row["bioavailability_high"], row["bioavailability_fraction"]
    if lo is not None and hi is not None and not lo <= f <= hi:
        raise _RowError("bioavailability_fraction", f"{f} lies outside its own range {lo}-{hi}")
    if row["route_id"] != "iv" and row["ka_per_h"] is None:
        raise _RowError("ka_per_h", "an extravascular route needs an absorption rate")


_DOSE_UNITS = {"per_kg": "mg/kg", "per_kg_per_h": "mg/kg/h", "fixed": "mg"}


def _check_dose(row: dict[str, Any]) -> None:
    expected = _DOSE_UNITS[row["dose_basis"]]
    if row["dose_unit"] != expected:
        raise _RowError(
            "dose_unit", f"{row['dose_unit']!r} does not match dose_basis {row['dose_basis']!r} ({expected})"
        )
    lo, hi, typical = row["dose_low"], row["dose_high"], row["typical_dose"]
    if lo is not None and lo > hi:
        raise _RowError("dose_high", "is below dose_low")
    if typical is not None and not ((lo or 0) <= typical <= hi):
        raise _RowError("typical_dose", f"{typical} lies outside the range")
    for low, high in (("duration_min_low", "duration_min_high"), ("age_min_y", "age_max_y")):
        if row[low] is not None and row[high] is not None and row[low] > row[high]:
            raise _RowError(high, f"is below {low}")
    if row["delivery"] == "pump" and row["infusion_concentration_mg_per_ml"] is None:
        raise _RowError("infusion_concentration_mg_per_ml", "a pump regimen needs a stated dilution for its pump rate")
    if (row["infusion_concentration_mg_per_ml"] is None) != (row["dilution_source_id"] is None):
        raise _RowError("dilution_source_id", "a stated dilution and its source come together")
    if row["delivery"] != "pump" and (
        row["duration_min_high"] is not None or row["infusion_concentration_mg_per_ml"] is not None
    ):
        raise _RowError("delivery", "only a pump regimen has a maximum duration or an infusion dilution")
    if row["verified"] in ("partial", "no") and not row["note"]:
        raise _RowError("note", "a row not fully verified must say what is missing")


def _check_vial(row: dict[str, Any]) -> None:
    if row["form"] == "vial" and row["concentration_mg_per_ml"] is None:
        raise _RowError("concentration_mg_per_ml", "a vial needs a concentration")
    if row["form"] == "nasal device" and row["amount_per_device_mg"] is None:
        raise _RowError("amount_per_device_mg", "a nasal device needs an amount per device")


# Units allowed for each pharmacokinetic parameter.
PK_PARAMETER_UNITS: Mapping[str, tuple[str, ...]] = {
    "V": ("L/kg", "L"),
    "V1": ("L/kg", "L"),
    "Vss": ("L/kg", "L"),
    "CL": ("L/h", "L/h/kg"),
    "half_life": ("h",),
    "half_life_low": ("h",),
    "half_life_high": ("h",),
    "k10": ("1/min", "1/h"),
    "k12": ("1/min", "1/h"),
    "k21": ("1/min", "1/h"),
    "k13": ("1/min", "1/h"),
    "k31": ("1/min", "1/h"),
    "fraction_metabolised": ("fraction",),
    "presystemic_fraction": ("fraction",),
    # Perez-Ruixo 2021 esketamine/noresketamine population model
    "FRn": ("fraction",),
    "FRn_later_device_factor": ("ratio",),
    "ka_n": ("1/h",),
    "Dsw": ("h",),
    "ka_sw": ("1/h",),
    "Dpo": ("h",),
    "ka_po": ("1/h",),
    "Fgut": ("fraction",),
    "Vc": ("L",),
    "Q1": ("L/h",),
    "Vp1": ("L",),
    "Q2": ("L/h",),
    "Vp2": ("L",),
    "Qh": ("L/h",),
    "Qh_decrease_per_year_over_60": ("L/h/year",),
    "Vh": ("L",),
    "kel": ("1/h",),
    "kmet": ("1/h",),
    "Vcn": ("L",),
    "CLn": ("L/h",),
    "Q3": ("L/h",),
    "Vpn": ("L",),
}


def _check_pk(row: dict[str, Any]) -> None:
    allowed = PK_PARAMETER_UNITS.get(row["parameter"])
    if allowed is None:
        raise _RowError("parameter", f"{row['parameter']!r} is not a known parameter ({', '.join(PK_PARAMETER_UNITS)})")
    if row["unit"] not in allowed:
        raise _RowError("unit", f"{row['unit']!r} is not a unit for {row['parameter']} ({', '.join(allowed)})")
    if row["value"] <= 0:
        raise _RowError("value", "must be positive")
    if row["unit"] == "fraction" and row["value"] > 1:
        raise _RowError("value", "a fraction cannot exceed 1")


PK_VARIABILITY_PARAMETERS = {
    "omega2_V1": "log-scale variance",
    "omega2_CL": "log-scale variance",
    "cov_V1_CL": "log-scale covariance",
    "weight_exponent_V1": "exponent",
    "weight_exponent_CL": "exponent",
    "weight_mean": "kg",
    "weight_sd": "kg",
}
"""Parameters of ``pk_variability.csv`` and the unit each is given in."""


def _check_variability(row: dict[str, Any]) -> None:
    unit = PK_VARIABILITY_PARAMETERS[row["parameter"]]
    if row["unit"] != unit:
        raise _RowError("unit", f"{row['unit']!r} is not the unit of {row['parameter']} ({unit})")
    if row["parameter"] != "cov_V1_CL" and row["value"] <= 0:
        raise _RowError("value", "must be positive")


def _check_validity(row: dict[str, Any]) -> None:
    for low, high in (("age_min_y", "age_max_y"), ("weight_min_kg", "weight_max_kg")):
        if row[low] is not None and row[high] is not None and row[low] > row[high]:
            raise _RowError(high, f"is below {low}")


def _check_scope(row: dict[str, Any]) -> None:
    try:
        re.compile(row["must_mention"])
    except re.error as exc:
        raise _RowError("must_mention", f"is not a regular expression ({exc})") from None


def _check_fact(row: dict[str, Any]) -> None:
    if row["verified"] in UNVERIFIED_LEVELS and not row["note"]:
        raise _RowError("note", "a fact not fully verified must say what is missing")


def _check_trial(row: dict[str, Any]) -> None:
    for lo, hi, est in (("ci_low", "ci_high", "effect"), ("or_ci_low", "or_ci_high", "odds_ratio")):
        if row[lo] is not None and row[hi] is not None:
            if row[est] is None:
                raise _RowError(est, "has an interval but no estimate")
            if not row[lo] <= row[est] <= row[hi]:
                raise _RowError(est, f"{row[est]} lies outside its interval {row[lo]} to {row[hi]}")
    for count in ("n_drug", "n_control"):
        if row[count] is not None and row[count] > row["n"]:
            raise _RowError(count, f"{row[count]} exceeds the trial's n {row['n']}")


def _check_adverse(row: dict[str, Any]) -> None:
    for arm in ("drug", "placebo"):
        events, n, pct = row[f"{arm}_events"], row[f"{arm}_n"], row[f"{arm}_pct"]
        if events is not None:
            if events > n:
                raise _RowError(f"{arm}_events", f"{events} exceeds {arm}_n {n}")
            if abs(100 * events / n - pct) > 1.0:
                raise _RowError(f"{arm}_pct", f"{pct}% disagrees with {events}/{n} = {100 * events / n:.1f}%")


SCHEMAS: Mapping[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "references",
            (
                Column("id", pattern=_ID),
                _text("authors"),
                _int("year", 1900, 2100),
                _text("title"),
                _text("publisher"),
                Column("doi", required=False, pattern=r"10\.\d{4,9}/\S+"),
                Column("url", required=False, pattern=r"https?://\S+"),
                _VERIFIED,
                _NOTE,
            ),
            key=("id",),
            row_check=_check_reference,
            description="Every source the course cites.",
        ),
        TableSpec(
            "timeline",
            (
                Column("event_id", pattern=_ID),
                _int("year", 1900, 2100, required=False),
                Column("date", "date", required=False),
                _text("when"),
                _text("label"),
                _text("event"),
                _choice("category", "chemistry", "clinical", "science", "regulatory", "society"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("event_id",),
            description="Events from synthesis to esketamine's approvals.",
        ),
        TableSpec(
            "routes",
            (
                Column("route_id", pattern=_ID),
                _text("route"),
                _choice("analyte", "racemic ketamine", "esketamine"),
                _num("bioavailability_fraction", 0.0, 1.0),
                _num("bioavailability_low", 0.0, 1.0, required=False),
                _num("bioavailability_high", 0.0, 1.0, required=False),
                _num("tmax_reported_min_low", 0.0, 600.0, required=False),
                _num("tmax_reported_min_high", 0.0, 600.0, required=False),
                _num("ka_per_h", 0.01, 100.0, required=False),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("route_id",),
            row_check=_check_route,
            description="Bioavailability and absorption by route.",
        ),
        TableSpec(
            "pk_models",
            (
                Column("model_id", pattern=_ID),
                _choice(
                    "structure", "one-compartment", "two-compartment", "three-compartment",
                    "esketamine and noresketamine population model", "summary",
                ),
                _text("population"),
                _text("parameter"),
                _num("value", 0.0, 10000.0),
                _text("unit"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("model_id", "parameter"),
            row_check=_check_pk,
            description="Published and course pharmacokinetic models, one row per parameter.",
        ),
        TableSpec(
            "pk_variability",
            (
                Column("variability_id", pattern=_ID),
                _choice("parameter", *PK_VARIABILITY_PARAMETERS),
                _num("value", -10.0, 1000.0),
                _text("unit"),
                _choice("analyte", "racemic ketamine", "S-ketamine"),
                _text("population"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("variability_id", "parameter"),
            row_check=_check_variability,
            description=(
                "Between-subject variability (log-normal) of a published population analysis, one row per parameter."
            ),
        ),
        TableSpec(
            "pk_model_validity",
            (
                Column("model_id", pattern=_ID),
                _num("age_min_y", 0.0, 120.0, required=False),
                _num("age_max_y", 0.0, 120.0, required=False),
                _num("weight_min_kg", 0.0, 500.0, required=False),
                _num("weight_max_kg", 0.0, 500.0, required=False),
                _text("setting"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("model_id",),
            row_check=_check_validity,
            description="Who and what each pharmacokinetic model was fitted to (its validity range).",
        ),
        TableSpec(
            "concentration_bands",
            (
                Column("band_id", pattern=_ID),
                _text("label"),
                _num("low_ng_per_ml", 0.0, 10000.0),
                _num("high_ng_per_ml", 0.0, 10000.0),
                _choice("analyte", "racemic ketamine", "S-ketamine"),
                _text("population"),
                _text("regimen"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("band_id",),
            row_check=_check_band,
            description="Plasma concentrations associated with effects.",
        ),
        TableSpec(
            "labelled_doses",
            (
                Column("regimen_id", pattern=_ID),
                _text("product"),
                _text("indication"),
                _choice("route", "iv", "im", "intranasal", "oral"),
                _choice("status", "label", "guideline", "research"),
                _choice("dose_basis", *_DOSE_UNITS),
                _num("dose_low", 0.0, 1000.0, required=False),
                _num("dose_high", 0.0, 1000.0),
                _text("dose_unit"),
                _num("typical_dose", 0.0, 1000.0, required=False),
                _choice("delivery", "push", "pump", "im_injection", "nasal_device"),
                _num("duration_min_low", 0.0, 1440.0, required=False),
                _num("duration_min_high", 0.0, 1440.0, required=False),
                _num("max_rate_mg_per_kg_per_min", 0.0, 100.0, required=False),
                _num("infusion_concentration_mg_per_ml", 0.01, 100.0, required=False),
                Column("dilution_source_id", "ids", required=False, pattern=rf"{_ID}(;{_ID})*"),
                _num("age_min_y", 0.0, 120.0, required=False),
                _num("age_max_y", 0.0, 120.0, required=False),
                _text("administration"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("regimen_id",),
            row_check=_check_dose,
            description="Labelled, guideline and research dose ranges.",
        ),
        TableSpec(
            "vials",
            (
                Column("presentation_id", pattern=_ID),
                _text("product"),
                _choice("form", "vial", "nasal device"),
                _num("concentration_mg_per_ml", 0.1, 500.0, required=False),
                _num("amount_per_device_mg", 0.1, 500.0, required=False),
                Column("dilute_before_iv", "bool"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("presentation_id",),
            row_check=_check_vial,
            description="Vial concentrations and nasal devices.",
        ),
        TableSpec(
            "trials",
            (
                Column("trial_id", pattern=_ID),
                _text("short_name"),
                _int("year", 1990, 2100),
                _text("condition"),
                _text("design"),
                _int("n", 1, 1_000_000),
                _text("intervention"),
                _text("comparator"),
                _choice("control_type", "saline", "midazolam", "placebo spray", "ECT", "mixed", "none"),
                _text("primary_outcome"),
                _text("timepoint"),
                _text("effect_measure", required=False),
                _num("effect", -1000.0, 1000.0, required=False),
                _num("ci_low", -1000.0, 1000.0, required=False),
                _num("ci_high", -1000.0, 1000.0, required=False),
                _text("outcome_event", required=False),
                _num("event_drug_pct", 0.0, 100.0, required=False),
                _num("event_control_pct", 0.0, 100.0, required=False),
                _int("n_drug", 1, 1_000_000, required=False),
                _int("n_control", 1, 1_000_000, required=False),
                _num("odds_ratio", 0.0, 1000.0, required=False),
                _num("or_ci_low", 0.0, 1000.0, required=False),
                _num("or_ci_high", 0.0, 1000.0, required=False),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("trial_id",),
            row_check=_check_trial,
            description="Key trials and meta-analyses.",
        ),
        TableSpec(
            "adverse_events",
            (
                _text("event"),
                _text("population"),
                _num("drug_pct", 0.0, 100.0),
                _num("placebo_pct", 0.0, 100.0),
                _int("drug_events", 0, 100_000, required=False),
                _int("drug_n", 1, 100_000),
                _int("placebo_events", 0, 100_000, required=False),
                _int("placebo_n", 1, 100_000),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("event", "population"),
            row_check=_check_adverse,
            description="Label adverse-event rates, drug vs placebo.",
        ),
        TableSpec(
            "nmda_affinity",
            (
                _text("compound"),
                _num("ki_um", 0.001, 1000.0),
                _text("assay"),
                _text("species"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("compound",),
            description="NMDA receptor affinities (Ki).",
        ),
        TableSpec(
            "facts",
            (
                Column("fact_id", pattern=_ID),
                _choice("unit", "history", "mechanism", "pharmacokinetics", "clinical", "safety", "regulatory"),
                _text("statement"),
                _choice(
                    "evidence_in", "humans", "humans and animals", "rodents", "rats", "mice", "cells", "",
                    required=False,
                ),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("fact_id",),
            row_check=_check_fact,
            description="Cited statements the lessons make in prose.",
        ),
        TableSpec(
            "claims",
            (
                Column("claim_id", pattern=_ID),
                _text("popular_claim"),
                _text("evidence"),
                _choice("verdict", "wrong", "overstated", "unsupported", "correct"),
                _SOURCE,
            ),
            key=("claim_id",),
            description="Popular claims about ketamine and what the evidence shows (the course's own wording).",
        ),
        TableSpec(
            "citation_scope",
            (
                _SOURCE,
                _text("must_mention"),
                _text("reason"),
            ),
            key=("source_id",),
            row_check=_check_scope,
            description=(
                "What a claim citing a source must mention (species, drug, design), "
                "so a citation cannot claim more than its source."
            ),
        ),
        TableSpec(
            "constants",
            (
                Column("name", pattern=_ID),
                _num("value", 0.0, 1e6),
                _text("unit"),
                _VERIFIED,
                _SOURCE,
                _NOTE,
            ),
            key=("name",),
            description="Physical constants and course input limits.",
        ),
    )
}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Table:
    """A validated table: an ordered, read-only sequence of typed rows."""

    name: str
    path: Path
    columns: tuple[str, ...]
    key: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...] = field(repr=False)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, *key: Any) -> Mapping[str, Any]:
        """Return the row whose key columns equal ``key``."""
        for r in self.rows:
            if tuple(r[k] for k in self.key) == key:
                return r
        known = ", ".join("/".join(str(r[k]) for k in self.key) for r in self.rows)
        raise KeyError(f"{self.name}: no row {'/'.join(map(str, key))!r}; known: {known}")

    def where(self, **equal: Any) -> list[Mapping[str, Any]]:
        """Rows whose columns equal the given values."""
        return [r for r in self.rows if all(r[c] == v for c, v in equal.items())]

    def column(self, name: str) -> list[Any]:
        """All values of one column, in row order."""
        return [r[name] for r in self.rows]


def table_names() -> list[str]:
    """Names of all tables the course defines, references first."""
    return list(SCHEMAS)


def _read_rows(spec: TableSpec, path: Path) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    where = f"data/{spec.filename}"
    if not path.is_file():
        raise DataError(f"{where}: file not found at {path}")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            raw_rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: cannot be read as UTF-8 CSV ({exc})") from None
    if header is None:
        raise DataError(f"{where}: the file is empty (no header row)")
    expected = [c.name for c in spec.columns]
    header = [h.strip() for h in header]
    if header != expected:
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        detail = []
        if missing:
            detail.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected column(s) {', '.join(extra)}")
        if not detail:
            detail.append(f"columns out of order; expected {', '.join(expected)}")
        raise DataError(f"{where}, header: {'; '.join(detail)}")
    if not raw_rows:
        raise DataError(f"{where}: the table has no rows")
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for number, raw in enumerate(raw_rows, start=2):  # line 1 is the header
        label = f"{where}, row {number}"
        if len(raw) != len(expected):
            raise DataError(f"{label}: has {len(raw)} fields, expected {len(expected)}")
        row: dict[str, Any] = {}
        for column, cell in zip(spec.columns, raw, strict=False):
            try:
                row[column.name] = _parse(column, cell)
            except ValueError as exc:
                raise DataError(f"{label}, column '{column.name}': {exc}") from None
        key = tuple(row[k] for k in spec.key)
        if key in seen:
            raise DataError(
                f"{label}, column '{spec.key[0]}': duplicate id {'/'.join(map(str, key))!r} (first on row {seen[key]})"
            )
        seen[key] = number
        if spec.row_check is not None:
            try:
                spec.row_check(row)
            except _RowError as exc:
                raise DataError(f"{label}, column '{exc.column}': {exc.message}") from None
        rows.append(row)
    return tuple(header), rows


@cache
def _load(name: str, folder: Path) -> Table:
    if name not in SCHEMAS:
        raise DataError(f"unknown table {name!r}; known tables: {', '.join(SCHEMAS)}")
    spec = SCHEMAS[name]
    path = folder / spec.filename
    header, rows = _read_rows(spec, path)
    if name != "references":
        known = {r["id"] for r in _load("references", folder)}
        id_columns = [c.name for c in spec.columns if c.kind == "ids"]
        for number, row in enumerate(rows, start=2):
            for column in id_columns:
                for source_id in (row[column] or "").split(";") if row[column] else ():
                    if source_id not in known:
                        raise DataError(
                            f"data/{spec.filename}, row {number}, column '{column}': "
                            f"{source_id!r} is not an id in data/references.csv"
                        )
    frozen = tuple(_FrozenRow(r) for r in rows)
    return Table(name=name, path=path, columns=header, key=spec.key, rows=frozen)


class _FrozenRow(dict):
    """A row that cannot be changed (tables are cached and shared by the whole process).

    Every method of ``dict`` that changes it in place raises, ``row |= other`` included;
    ``dict(row)`` or ``row | other`` make a changeable copy.
    """

    def _readonly(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("data rows are read-only; copy with dict(row) to change one")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _readonly


def load_table(name: str) -> Table:
    """Load, validate and return the table ``data/<name>.csv``.

    Results are cached per data folder; the cache is keyed on the folder so
    that tests pointing ``KETAMINE_COURSE_DATA`` elsewhere get fresh tables.
    """
    return _load(name, data_dir().resolve())


def validate_all() -> dict[str, int]:
    """Validate every table; return the number of rows in each.

    Also fails if ``data/`` holds a CSV file the course does not define, so
    that no uncited table can slip in.
    """
    folder = data_dir().resolve()
    undefined = sorted(p.name for p in folder.glob("*.csv") if p.stem not in SCHEMAS)
    if undefined:
        raise DataError(f"data/: {', '.join(undefined)} has no schema in ketamine_course.data.SCHEMAS")
    return {name: len(_load(name, folder)) for name in SCHEMAS}


def reference(reference_id: str) -> Mapping[str, Any]:
    """The row of ``references.csv`` with this id."""
    return load_table("references").row(reference_id)


def format_reference(reference_id: str) -> str:
    """A one-line citation: authors (year). Title. Publisher. DOI or URL; with a flag if unverified."""
    ref = reference(reference_id)
    link = f"https://doi.org/{ref['doi']}" if ref["doi"] else (ref["url"] or "no DOI or URL")
    flag = ""
    if ref["verified"] in UNVERIFIED_LEVELS:
        flag = f" [not fully verified: {ref['note']}]" if ref["note"] else " [not fully verified]"
    elif ref["verified"] == "secondary":
        flag = " [read in a secondary copy]"
    return f"{ref['authors']} ({ref['year']}). {ref['title']}. {ref['publisher']}. {link}{flag}"


def cite(source_ids: str | Sequence[str]) -> str:
    """A short in-text citation such as ``[zanos2018; kamp2020]``; checks each id exists."""
    ids = source_ids.split(";") if isinstance(source_ids, str) else list(source_ids)
    for reference_id in ids:
        reference(reference_id)
    return "[" + "; ".join(ids) + "]"


def constant(name: str) -> float:
    """A value from ``constants.csv`` (e.g. ``molar_mass_ketamine_base``)."""
    return float(load_table("constants").row(name)["value"])
