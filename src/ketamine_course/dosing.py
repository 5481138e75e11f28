"""Dose arithmetic for teaching: mg from mg/kg, mL from a vial, mL/h for an infusion.

Every calculation is checked against the labelled (or guideline, or research)
range for its product, indication and route in ``data/labelled_doses.csv``, and
against the vial concentrations in ``data/vials.csv``. Out-of-range or
nonsensical input raises :class:`DoseInputError` with a message that names the
limit and its source.

These tools teach arithmetic. They do not advise on treating anyone:
see :data:`DISCLAIMER`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from .data import cite, constant, load_table

__all__ = [
    "DISCLAIMER",
    "DoseInputError",
    "Regimen",
    "DoseCalculation",
    "regimen",
    "regimens",
    "dose_mg",
    "volume_ml",
    "infusion_rate_ml_per_h",
    "infusion_dose_rate_mg_per_h",
    "esketamine_session_doses_mg",
    "esketamine_devices",
    "pounds_to_kg",
    "calculate_dose",
]

DISCLAIMER = (
    "For teaching only. These calculations illustrate published ranges (labels, guidelines and research "
    "protocols, each marked as such); they are not medical advice and must not be used to dose, treat or "
    "monitor any person. Ketamine and esketamine are given only by qualified clinicians, with monitoring, "
    "within a product's label or, for off-label uses, under their own protocols."
)

POUNDS_PER_KG = 2.20462262185
"""Exact by definition of the international avoirdupois pound (1 lb = 0.45359237 kg)."""


class DoseInputError(ValueError):
    """An input to a dose calculation is missing, nonsensical or outside its labelled range.

    Messages are sentences in the learner's words: they start with a capital letter.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message[:1].upper() + message[1:])


@dataclass(frozen=True)
class Regimen:
    """A dose range for one product, indication and route, with its source."""

    regimen_id: str
    product: str
    indication: str
    route: str
    status: str
    dose_basis: str
    dose_low: float | None
    dose_high: float
    dose_unit: str
    typical_dose: float | None
    delivery: str
    duration_min_low: float | None
    duration_min_high: float | None
    max_rate_mg_per_kg_per_min: float | None
    infusion_concentration_mg_per_ml: float | None
    dilution_source_id: str | None
    age_min_y: float | None
    age_max_y: float | None
    administration: str
    source_id: str
    verified: str
    note: str | None = field(default=None, compare=False)

    @property
    def duration_min(self) -> float | None:
        """The regimen's own duration when its source fixes one (40 min for the research infusion), else None."""
        if self.duration_min_low is not None and self.duration_min_low == self.duration_min_high:
            return self.duration_min_low
        return None

    @property
    def duration_text(self) -> str:
        """How long the source says the dose takes, in words."""
        low, high = self.duration_min_low, self.duration_min_high
        if low is None and high is None:
            return "no duration given by the source"
        if low == high:
            return f"over {_fmt(low)} min"  # type: ignore[arg-type]
        if high is None:
            return f"over at least {_minutes(low)}"  # type: ignore[arg-type]
        return f"over {_fmt(low or 0)}-{_fmt(high)} min"

    @property
    def who_text(self) -> str:
        """Who the source's range is for, e.g. 'adults (18 years and over)'; empty if the source states no age."""
        low, high = self.age_min_y, self.age_max_y
        if low is None and high is None:
            return ""
        if high is None:
            return "adults (18 years and over)" if low == 18 else f"people aged {_fmt(low)} years and over"  # type: ignore[arg-type]
        return f"people aged {_fmt(low or 0)}-{_fmt(high)} years"

    @property
    def description(self) -> str:
        """E.g. 'Ketalar (ketamine HCl injection), induction of anaesthesia, IV (label)'."""
        return f"{self.product}, {self.indication}, {self.route.upper()} ({self.status})"

    @property
    def range_text(self) -> str:
        """E.g. '1-4.5 mg/kg' or 'up to 0.35 mg/kg'."""
        if self.dose_low is None:
            return f"up to {_fmt(self.dose_high)} {self.dose_unit}"
        return f"{_fmt(self.dose_low)}-{_fmt(self.dose_high)} {self.dose_unit}"


def _fmt(value: float) -> str:
    """Format a number without a trailing '.0'."""
    return f"{value:g}"


def _minutes(value: float) -> str:
    """'1 min' -> '60 seconds'; other values in minutes."""
    return "60 seconds" if value == 1 else f"{_fmt(value)} min"


_DELIVERY_WORDS = {
    "push": "a slow injection by hand",
    "pump": "an infusion on a pump",
    "im_injection": "an intramuscular injection",
    "nasal_device": "a nasal spray device",
}


def regimen(regimen_id: str | Regimen) -> Regimen:
    """The regimen with this id from ``labelled_doses.csv``."""
    if isinstance(regimen_id, Regimen):
        return regimen_id
    table = load_table("labelled_doses")
    try:
        row = table.row(regimen_id)
    except KeyError:
        known = ", ".join(table.column("regimen_id"))
        raise DoseInputError(f"unknown regimen {regimen_id!r}; choose one of: {known}") from None
    return _regimen_from_row(row)


def _regimen_from_row(row: Mapping[str, Any]) -> Regimen:
    return Regimen(**{name: row[name] for name in Regimen.__dataclass_fields__})


def regimens(dose_basis: str | None = None) -> list[Regimen]:
    """All regimens, optionally only those of one basis ('per_kg', 'per_kg_per_h', 'fixed')."""
    rows = load_table("labelled_doses").rows
    return [_regimen_from_row(r) for r in rows if dose_basis is None or r["dose_basis"] == dose_basis]


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


_WORDS = {
    "weight_kg": "The weight",
    "weight_lb": "The weight",
    "dose_mg_per_kg": "The dose",
    "rate_mg_per_kg_per_h": "The infusion rate",
    "concentration_mg_per_ml": "The vial strength",
    "dose_mg": "The dose",
    "duration_h": "The duration",
    "duration_min": "The duration",
    "session_dose_mg": "The session dose",
    "age_y": "The age",
}


def _number(name: str, value: object, unit: str) -> float:
    """Return ``value`` as a float if it is a finite, positive real number; else raise in the learner's words.

    The message names the quantity in words and keeps the argument name in brackets for readers of the code.
    """
    what = f"{_WORDS.get(name, name)} ({name})"
    if isinstance(value, bool) or not isinstance(value, Real):
        shown = "nothing" if value is None else f"{type(value).__name__} {value!r}"
        hint = ""
        if isinstance(value, str):
            hint = f"; type the number alone, in {unit} (e.g. 70, not '70 kg')"
        raise DoseInputError(f"{what} must be a number in {unit}; got {shown}{hint}")
    number = float(value)
    if math.isnan(number):
        raise DoseInputError(f"{what} is not a number (NaN); type a value in {unit}")
    if math.isinf(number):
        raise DoseInputError(f"{what} is infinite; type a finite value in {unit}")
    if number <= 0:
        raise DoseInputError(f"{what} must be more than 0 {unit}; you gave {_fmt(number)} {unit}")
    return number


def _weight(weight_kg: object) -> float:
    weight = _number("weight_kg", weight_kg, "kg")
    low, high = constant("min_weight_kg"), constant("max_weight_kg")
    source = cite("course_model")
    if weight < low:
        raise DoseInputError(
            f"A weight of {_fmt(weight)} kg is below the course's input limit of {_fmt(low)} kg {source}; "
            "check the entry (weights are in kilograms)"
        )
    if weight > high:
        hint = ""
        if low <= weight / POUNDS_PER_KG <= high:
            hint = f"; if that was pounds, {_fmt(weight)} lb is {weight / POUNDS_PER_KG:.1f} kg"
        raise DoseInputError(
            f"A weight of {_fmt(weight)} kg is above the course's input limit of {_fmt(high)} kg {source}{hint}"
        )
    return weight


def _microgram_hint(value: float, plan: Regimen) -> str:
    """A 'did you enter micrograms?' hint, only when value/1000 would fall inside the range (so it fits the number
    typed)."""
    if plan.dose_low is None or not plan.dose_low <= value / 1000 <= plan.dose_high:
        return ""
    unit = plan.dose_unit.replace("mg", "ug", 1)
    return f"; did you enter micrograms? {_fmt(value)} {unit} is {_fmt(value / 1000)} {plan.dose_unit}"


def _in_range(name: str, value: float, plan: Regimen) -> None:
    source = cite(plan.source_id)
    what = _WORDS.get(name, name)
    if plan.dose_low is not None and value < plan.dose_low:
        raise DoseInputError(
            f"{what} of {_fmt(value)} {plan.dose_unit} is below the minimum of {_fmt(plan.dose_low)} {plan.dose_unit} "
            f"for {plan.description}, range {plan.range_text} {source}"
        )
    if value > plan.dose_high:
        raise DoseInputError(
            f"{what} of {_fmt(value)} {plan.dose_unit} is above the maximum of {_fmt(plan.dose_high)} {plan.dose_unit} "
            f"for {plan.description}, range {plan.range_text} {source}{_microgram_hint(value, plan)}"
        )


def _age(age_y: object, plan: Regimen) -> float | None:
    """Check an age against the ages the regimen's source covers (``None``: not given, not checked)."""
    if age_y is None:
        return None
    if isinstance(age_y, bool) or not isinstance(age_y, Real) or not math.isfinite(float(age_y)) or float(age_y) < 0:
        raise DoseInputError(f"The age (age_y) must be a number of years, 0 or more; got {age_y!r}")
    age = float(age_y)
    low, high = plan.age_min_y, plan.age_max_y
    if (low is not None and age < low) or (high is not None and age > high):
        raise DoseInputError(
            f"{plan.description} is for {plan.who_text} {cite(plan.source_id)}; "
            f"an age of {_fmt(age)} years is outside it, "
            "and the course does not extrapolate a range to people its source does not cover"
        )
    return age


def _basis(plan: Regimen, expected: str, what: str) -> None:
    if plan.dose_basis != expected:
        raise DoseInputError(
            f"{plan.regimen_id} is dosed {plan.dose_unit}, so it cannot be used for {what}; "
            f"choose a regimen dosed in {dict(per_kg='mg/kg', per_kg_per_h='mg/kg/h', fixed='mg')[expected]}"
        )


# --------------------------------------------------------------------------
# Calculations
# --------------------------------------------------------------------------


def pounds_to_kg(weight_lb: float) -> float:
    """Convert a body weight from pounds to kilograms (1 lb = 0.45359237 kg)."""
    return _number("weight_lb", weight_lb, "lb") / POUNDS_PER_KG


def dose_mg(weight_kg: float, dose_mg_per_kg: float, regimen_id: str | Regimen) -> float:
    """Dose in mg = weight (kg) x dose (mg/kg), after checking both against the regimen's range.

    >>> dose_mg(70, 2, "ketalar_iv_induction")
    140.0
    """
    plan = regimen(regimen_id)
    _basis(plan, "per_kg", "a weight-based dose")
    weight = _weight(weight_kg)
    per_kg = _number("dose_mg_per_kg", dose_mg_per_kg, "mg/kg")
    _in_range("dose_mg_per_kg", per_kg, plan)
    return weight * per_kg


def infusion_dose_rate_mg_per_h(weight_kg: float, rate_mg_per_kg_per_h: float, regimen_id: str | Regimen) -> float:
    """Infusion dose rate in mg/h = weight (kg) x rate (mg/kg/h), checked against the regimen.

    >>> infusion_dose_rate_mg_per_h(80, 0.25, "acute_pain_iv_infusion")
    20.0
    """
    plan = regimen(regimen_id)
    _basis(plan, "per_kg_per_h", "an infusion dose rate")
    weight = _weight(weight_kg)
    rate = _number("rate_mg_per_kg_per_h", rate_mg_per_kg_per_h, "mg/kg/h")
    _in_range("rate_mg_per_kg_per_h", rate, plan)
    return weight * rate


def _vial(concentration_mg_per_ml: object) -> Mapping[str, Any]:
    concentration = _number("concentration_mg_per_ml", concentration_mg_per_ml, "mg/mL")
    vials = load_table("vials").where(form="vial")
    for row in vials:
        if math.isclose(row["concentration_mg_per_ml"], concentration):
            return row
    listed = ", ".join(_fmt(r["concentration_mg_per_ml"]) for r in vials)
    sources = cite(sorted({s for r in vials for s in r["source_id"].split(";")}))
    hint = ""
    if any(math.isclose(r["concentration_mg_per_ml"], concentration / 1000) for r in vials):
        hint = f"; did you enter ug/mL? {_fmt(concentration)} ug/mL is {_fmt(concentration / 1000)} mg/mL"
    raise DoseInputError(
        f"concentration_mg_per_ml = {_fmt(concentration)} mg/mL is not a labelled vial strength; "
        f"ketamine injection comes as {listed} mg/mL {sources}{hint}"
    )


def _solution_volume_ml(dose_mg: float, concentration_mg_per_ml: float) -> float:
    """Volume of a solution of any stated strength (a vial or a labelled dilution)."""
    return _number("dose_mg", dose_mg, "mg") / _number("concentration_mg_per_ml", concentration_mg_per_ml, "mg/mL")


def volume_ml(dose_mg: float, concentration_mg_per_ml: float) -> float:
    """Volume in mL = dose (mg) / vial concentration (mg/mL); the concentration must be a labelled strength.

    >>> volume_ml(140, 50)
    2.8
    """
    dose = _number("dose_mg", dose_mg, "mg")
    vial = _vial(concentration_mg_per_ml)
    return dose / vial["concentration_mg_per_ml"]


def infusion_rate_ml_per_h(dose_mg: float, duration_h: float, concentration_mg_per_ml: float) -> float:
    """Pump rate in mL/h to give ``dose_mg`` over ``duration_h`` from a solution of the given strength.

    >>> round(infusion_rate_ml_per_h(35, 40 / 60, 10), 2)
    5.25
    """
    duration = _number("duration_h", duration_h, "h")
    longest = constant("max_infusion_duration_h")
    if duration > longest:
        raise DoseInputError(
            f"A duration of {_fmt(duration)} h is above the course's input limit of {_fmt(longest)} h "
            f"{cite('course_model')}; did you enter minutes? {_fmt(duration)} min is {duration / 60:.3g} h"
        )
    return volume_ml(dose_mg, concentration_mg_per_ml) / duration


def esketamine_session_doses_mg(regimen_id: str | Regimen = "spravato_trd") -> list[float]:
    """Session doses allowed by the label: multiples of one device between the labelled limits.

    >>> esketamine_session_doses_mg()
    [56.0, 84.0]
    """
    plan = regimen(regimen_id)
    _basis(plan, "fixed", "a nasal-spray session")
    per_device = float(load_table("vials").row("spravato_device")["amount_per_device_mg"])
    low = plan.dose_low if plan.dose_low is not None else per_device
    doses = []
    dose = per_device
    while dose <= plan.dose_high + 1e-9:
        if dose >= low - 1e-9:
            doses.append(dose)
        dose += per_device
    return doses


def esketamine_devices(session_dose_mg: float, regimen_id: str | Regimen = "spravato_trd") -> int:
    """Number of 28 mg nasal devices for a labelled esketamine session dose (56 mg -> 2, 84 mg -> 3).

    >>> esketamine_devices(84)
    3
    """
    plan = regimen(regimen_id)
    dose = _number("session_dose_mg", session_dose_mg, "mg")
    _in_range("session_dose_mg", dose, plan)
    allowed = esketamine_session_doses_mg(plan)
    if not any(math.isclose(dose, a) for a in allowed):
        raise DoseInputError(
            f"A session dose of {_fmt(dose)} mg is not a labelled session dose for {plan.description}; "
            f"sessions are {' or '.join(_fmt(a) for a in allowed)} mg {cite(plan.source_id)}"
        )
    per_device = float(load_table("vials").row("spravato_device")["amount_per_device_mg"])
    return round(dose / per_device)


@dataclass(frozen=True)
class DoseCalculation:
    """A worked weight-based dose: what the dose widget shows.

    ``volume_ml`` is drawn from the vial. For a pump regimen the dose is
    diluted to the regimen's stated ``infusion_concentration_mg_per_ml`` and
    run at ``rate_ml_per_h``; for a push, ``duration_min`` is how long the
    injection takes and there is no pump rate.
    """

    regimen: Regimen
    weight_kg: float
    dose_mg_per_kg: float
    dose_mg: float
    concentration_mg_per_ml: float
    volume_ml: float
    duration_min: float | None
    infusion_concentration_mg_per_ml: float | None
    infusion_volume_ml: float | None
    rate_ml_per_h: float | None
    age_y: float | None
    notes: tuple[str, ...]


def _duration(plan: Regimen, per_kg: float, duration_min: float | None) -> float | None:
    """The administration time in minutes, checked against how the source says the dose is given.

    ``None`` means the regimen's own duration; ``0`` means a bolus (all at once).
    """
    source = cite(plan.source_id)
    if duration_min is None:
        if plan.delivery == "pump" and plan.duration_min is None:
            raise DoseInputError(f"{plan.description} is {_DELIVERY_WORDS['pump']}: give its duration in minutes")
        minutes = plan.duration_min if plan.delivery == "pump" else plan.duration_min_low
        if plan.max_rate_mg_per_kg_per_min is not None:
            minutes = per_kg / plan.max_rate_mg_per_kg_per_min
        return minutes
    if (
        isinstance(duration_min, bool) or not isinstance(duration_min, Real) or not math.isfinite(float(duration_min))
        or duration_min < 0
    ):
        raise DoseInputError(
            f"The duration (duration_min) must be a number of minutes, 0 for a bolus; got {duration_min!r}"
        )
    minutes = float(duration_min)
    if plan.delivery in ("im_injection", "nasal_device"):
        if minutes:
            raise DoseInputError(
                f"{plan.description} is {_DELIVERY_WORDS[plan.delivery]}, which has no infusion time; "
                f"set the duration to 0 {source}"
            )
        return None
    low, high = plan.duration_min_low, plan.duration_min_high
    shortest = low
    if plan.max_rate_mg_per_kg_per_min is not None:
        shortest = per_kg / plan.max_rate_mg_per_kg_per_min
    if minutes == 0 and (shortest is not None or plan.delivery == "pump"):
        how = (
            plan.duration_text if plan.max_rate_mg_per_kg_per_min is None
            else f"at no more than {_fmt(plan.max_rate_mg_per_kg_per_min)} mg/kg/min"
        )
        raise DoseInputError(
            f"{plan.description} is not given as a bolus: it is {_DELIVERY_WORDS[plan.delivery]} "
            f"{how} {source}"
        )
    if shortest is not None and minutes < shortest - 1e-9:
        raise DoseInputError(
            f"{_fmt(minutes)} min is too fast for {plan.description}: the source says {plan.administration}, "
            f"so this dose takes at least {_minutes(round(shortest, 2))} {source}"
        )
    if high is not None and minutes > high + 1e-9:
        raise DoseInputError(
            f"{_fmt(minutes)} min is longer than {plan.description} allows: "
            f"{plan.administration} ({plan.duration_text}) {source}"
        )
    return minutes


def calculate_dose(
    weight_kg: float,
    dose_mg_per_kg: float,
    regimen_id: str | Regimen,
    concentration_mg_per_ml: float,
    duration_min: float | None = None,
    age_y: float | None = None,
) -> DoseCalculation:
    """Dose (mg), volume (mL) and, for a pump regimen, pump rate (mL/h), all checked against the source.

    ``duration_min``: ``None`` uses the regimen's own duration (40 min for the
    research infusion; the shortest allowed injection time for a push);
    ``0`` means a bolus, refused where the source says the dose is given slowly.
    ``age_y``, when given, is checked against the ages the source covers.
    """
    plan = regimen(regimen_id)
    amount = dose_mg(weight_kg, dose_mg_per_kg, plan)
    age = _age(age_y, plan)
    vial = _vial(concentration_mg_per_ml)
    volume = amount / vial["concentration_mg_per_ml"]
    minutes = _duration(plan, float(dose_mg_per_kg), duration_min)
    rate = infusion_volume = None
    if plan.delivery == "pump" and minutes:
        infusion_volume = _solution_volume_ml(amount, plan.infusion_concentration_mg_per_ml)  # type: ignore[arg-type]
        rate = infusion_volume / (minutes / 60)
    notes = []
    if vial["dilute_before_iv"] and plan.route == "iv":
        notes.append(f"{vial['note']} {cite(vial['source_id'])}")
    if plan.status != "label":
        notes.append(f"This is a {plan.status} range, not a labelled indication {cite(plan.source_id)}.")
    if plan.verified in ("partial", "no"):
        notes.append(f"Not fully verified against the primary source: {plan.note}")
    return DoseCalculation(
        regimen=plan,
        weight_kg=float(weight_kg),
        dose_mg_per_kg=float(dose_mg_per_kg),
        dose_mg=amount,
        concentration_mg_per_ml=float(vial["concentration_mg_per_ml"]),
        volume_ml=volume,
        duration_min=minutes,
        infusion_concentration_mg_per_ml=plan.infusion_concentration_mg_per_ml if rate is not None else None,
        infusion_volume_ml=infusion_volume,
        rate_ml_per_h=rate,
        age_y=age,
        notes=tuple(notes),
    )
