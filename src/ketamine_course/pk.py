"""Pharmacokinetic models of ketamine, from the closed forms a learner can read to the published multi-compartment
models.

Units throughout: time in hours (``_h``), doses in mg, volumes in L,
concentrations in ng/mL. Since 1 mg/L = 1000 ng/mL, ``C = 1000 * amount_mg / volume_l``.

Closed forms (one compartment, elimination rate ``k = ln 2 / t_half``):

* IV bolus: ``C(t) = D/V * exp(-k t)``
* zero-order infusion of ``D`` over ``T``: ``C(t) = R/CL * (1 - exp(-k t))`` for ``t <= T``, ``R = D/T``,
  then first-order decline from ``C(T)``
* first-order absorption (Bateman): ``C(t) = F D ka / (V (ka - k)) * (exp(-k t) - exp(-ka t))``
* repeated doses: the sum of single-dose curves (superposition), because the model is linear.

Published two- and three-compartment models (Clements, Domino, Hijazi) are
solved exactly with the matrix exponential between dose events, so they run
as published. The esketamine population model of Perez-Ruixo et al. 2021
(nasal, swallowed and oral absorption, a liver compartment for first pass,
and the metabolite noresketamine) is one more linear system solved the same
way. Every model carries the population it was fitted to
(``data/pk_model_validity.csv``) and refuses people outside it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .data import DataError, load_table

__all__ = [
    "NG_PER_ML_PER_MG_PER_L",
    "elimination_rate_per_h",
    "clearance_l_per_h",
    "fraction_remaining",
    "concentration_iv_bolus_ng_per_ml",
    "concentration_infusion_ng_per_ml",
    "concentration_first_order_ng_per_ml",
    "concentration_repeated_ng_per_ml",
    "tmax_first_order_h",
    "accumulation_ratio",
    "auc_ng_h_per_ml",
    "auc_trapezoid_ng_h_per_ml",
    "time_above_h",
    "Summary",
    "summarize",
    "Dose",
    "CompartmentModel",
    "SimulationResult",
    "ModelRangeError",
    "ModelRangeWarning",
    "ModelValidity",
    "model_validity",
    "compartment_model",
    "one_compartment_model",
    "route_absorption",
    "simulate",
    "EsketamineDose",
    "EsketamineModel",
    "EsketamineResult",
    "esketamine_model",
    "esketamine_dose_range_mg",
    "simulate_esketamine",
]

NG_PER_ML_PER_MG_PER_L = 1000.0
"""1 mg/L equals 1000 ng/mL."""

MINUTES_PER_HOUR = 60.0

REFERENCE_WEIGHT_KG = 70.0
"""The course's reference adult, the one place that names it: models, calculators and the population default to this
weight, and ``data/pk_models.csv`` gives per-kg volumes of a 70 kg adult (tests/test_pk.py checks that its text
agrees)."""

FloatArray = NDArray[np.float64]


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number greater than zero; got {value}")
    return number


def _fraction(name: str, value: float) -> float:
    number = _positive(name, value)
    if number > 1:
        hint = f"; {value} looks like a percentage: use {number / 100:g}" if number <= 100 else ""
        raise ValueError(f"{name} is a fraction between 0 and 1; got {value}{hint}")
    return number


def _times(time_h: ArrayLike) -> FloatArray:
    times = np.asarray(time_h, dtype=float)
    if not np.all(np.isfinite(times)):
        raise ValueError("time_h must be finite")
    return times


# --------------------------------------------------------------------------
# One-compartment closed forms
# --------------------------------------------------------------------------


def elimination_rate_per_h(half_life_h: float) -> float:
    """First-order elimination rate constant k = ln 2 / t_half (1/h)."""
    return math.log(2) / _positive("half_life_h", half_life_h)


def clearance_l_per_h(volume_l: float, half_life_h: float) -> float:
    """Clearance CL = k x V (L/h)."""
    return elimination_rate_per_h(half_life_h) * _positive("volume_l", volume_l)


def fraction_remaining(n_half_lives: ArrayLike) -> FloatArray | float:
    """Fraction of drug left after ``n`` half-lives: 0.5 ** n (first-order elimination)."""
    n = np.asarray(n_half_lives, dtype=float)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ValueError("n_half_lives must be finite and not negative")
    result = 0.5**n
    return float(result) if result.ndim == 0 else result


def concentration_iv_bolus_ng_per_ml(
    dose_mg: float, volume_l: float, half_life_h: float, time_h: ArrayLike
) -> FloatArray:
    """C(t) = D/V * exp(-k t) after an IV bolus at t = 0 (zero before it)."""
    dose, volume = _positive("dose_mg", dose_mg), _positive("volume_l", volume_l)
    k = elimination_rate_per_h(half_life_h)
    t = _times(time_h)
    conc = NG_PER_ML_PER_MG_PER_L * dose / volume * np.exp(-k * np.clip(t, 0, None))
    return np.where(t >= 0, conc, 0.0)


def concentration_infusion_ng_per_ml(
    dose_mg: float, duration_h: float, volume_l: float, half_life_h: float, time_h: ArrayLike
) -> FloatArray:
    """Zero-order infusion of ``dose_mg`` over ``duration_h`` starting at t = 0.

    During the infusion C = R/CL (1 - exp(-k t)) with R = D/T; afterwards it
    declines from C(T) with rate k. The plateau, never reached by a short
    infusion, is R/CL.
    """
    dose, duration = _positive("dose_mg", dose_mg), _positive("duration_h", duration_h)
    volume = _positive("volume_l", volume_l)
    k = elimination_rate_per_h(half_life_h)
    rate_mg_per_h = dose / duration
    plateau = NG_PER_ML_PER_MG_PER_L * rate_mg_per_h / (k * volume)
    t = _times(time_h)
    during = plateau * (1 - np.exp(-k * np.clip(t, 0, duration)))
    after = np.exp(-k * np.clip(t - duration, 0, None))
    return np.where(t >= 0, during * after, 0.0)


def concentration_first_order_ng_per_ml(
    dose_mg: float,
    bioavailability: float,
    ka_per_h: float,
    volume_l: float,
    half_life_h: float,
    time_h: ArrayLike,
) -> FloatArray:
    """First-order absorption (Bateman function) of a dose given at t = 0.

    C = F D ka / (V (ka - k)) (exp(-k t) - exp(-ka t)); when ka = k the limit
    F D k t exp(-k t) / V is used.
    """
    dose, volume = _positive("dose_mg", dose_mg), _positive("volume_l", volume_l)
    f = _fraction("bioavailability", bioavailability)
    ka = _positive("ka_per_h", ka_per_h)
    k = elimination_rate_per_h(half_life_h)
    t = np.clip(_times(time_h), 0, None)
    scale = NG_PER_ML_PER_MG_PER_L * f * dose / volume
    if math.isclose(ka, k, rel_tol=1e-9):
        conc = scale * k * t * np.exp(-k * t)
    else:
        conc = scale * ka / (ka - k) * (np.exp(-k * t) - np.exp(-ka * t))
    return np.where(_times(time_h) >= 0, np.clip(conc, 0, None), 0.0)


def tmax_first_order_h(ka_per_h: float, half_life_h: float) -> float:
    """Time of the peak after first-order absorption: ln(ka/k)/(ka - k) (or 1/k when ka = k)."""
    ka = _positive("ka_per_h", ka_per_h)
    k = elimination_rate_per_h(half_life_h)
    if math.isclose(ka, k, rel_tol=1e-9):
        return 1 / k
    return math.log(ka / k) / (ka - k)


def concentration_repeated_ng_per_ml(
    single_dose: Callable[[FloatArray], FloatArray], dose_times_h: Iterable[float], time_h: ArrayLike
) -> FloatArray:
    """Superposition: sum of ``single_dose(t - t_i)`` over dose times ``t_i``.

    ``single_dose`` gives the curve of one dose given at t = 0 and must return
    zero for negative times (all the closed forms here do).
    """
    t = _times(time_h)
    total = np.zeros_like(t, dtype=float)
    for start in dose_times_h:
        total = total + single_dose(t - float(start))
    return total


def accumulation_ratio(half_life_h: float, interval_h: float) -> float:
    """Steady-state accumulation for repeated doses every ``interval_h``: 1 / (1 - exp(-k tau))."""
    k = elimination_rate_per_h(half_life_h)
    return 1 / (1 - math.exp(-k * _positive("interval_h", interval_h)))


def auc_ng_h_per_ml(dose_mg: float, bioavailability: float, clearance_l_per_h: float) -> float:
    """Area under the curve from zero to infinity: AUC = F D / CL (ng.h/mL)."""
    return (
        NG_PER_ML_PER_MG_PER_L
        * _fraction("bioavailability", bioavailability)
        * _positive("dose_mg", dose_mg)
        / _positive("clearance_l_per_h", clearance_l_per_h)
    )


def auc_trapezoid_ng_h_per_ml(time_h: ArrayLike, conc_ng_per_ml: ArrayLike) -> float:
    """Area under a sampled curve by the trapezoidal rule (ng.h/mL)."""
    return float(np.trapezoid(np.asarray(conc_ng_per_ml, dtype=float), _times(time_h)))


def time_above_h(time_h: ArrayLike, conc_ng_per_ml: ArrayLike, threshold_ng_per_ml: float) -> float:
    """Total time the sampled curve spends at or above a concentration, with linear interpolation at crossings."""
    t = _times(time_h)
    c = np.asarray(conc_ng_per_ml, dtype=float) - threshold_ng_per_ml
    total = 0.0
    for i in range(len(t) - 1):
        c0, c1, dt = c[i], c[i + 1], t[i + 1] - t[i]
        if c0 >= 0 and c1 >= 0:
            total += dt
        elif c0 >= 0 or c1 >= 0:  # one crossing inside the step
            total += dt * (max(c0, c1) / abs(c1 - c0))
    return total


@dataclass(frozen=True)
class Summary:
    """Exposure summary of a sampled concentration curve."""

    cmax_ng_per_ml: float
    tmax_h: float
    auc_ng_h_per_ml: float


def summarize(time_h: ArrayLike, conc_ng_per_ml: ArrayLike) -> Summary:
    """Cmax, Tmax and AUC (trapezoidal, over the sampled interval) of a curve."""
    t, c = _times(time_h), np.asarray(conc_ng_per_ml, dtype=float)
    i = int(np.argmax(c))
    return Summary(float(c[i]), float(t[i]), auc_trapezoid_ng_h_per_ml(t, c))


# --------------------------------------------------------------------------
# Linear multi-compartment models, solved exactly
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Dose:
    """One dose event: a bolus (``duration_h`` 0) or a zero-order infusion into the central compartment,
    or an extravascular dose absorbed first-order from a depot (``ka_per_h`` set)."""

    time_h: float
    amount_mg: float
    duration_h: float = 0.0
    bioavailability: float = 1.0
    ka_per_h: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_h):
            raise ValueError("dose time_h must be finite")
        _positive("amount_mg", self.amount_mg)
        if self.duration_h < 0 or not math.isfinite(self.duration_h):
            raise ValueError("duration_h must be zero (bolus) or positive (infusion)")
        _fraction("bioavailability", self.bioavailability)
        if self.ka_per_h is not None:
            _positive("ka_per_h", self.ka_per_h)
            if self.duration_h:
                raise ValueError("an absorbed dose (ka_per_h) cannot also be an infusion")


@dataclass(frozen=True)
class CompartmentModel:
    """A linear mammillary model: central volume and micro rate constants (1/h).

    ``k10`` is elimination from the central compartment; ``k1j``/``kj1`` are
    transfers to and from peripheral compartment j.
    """

    model_id: str
    central_volume_l: float
    k10_per_h: float
    transfer_per_h: tuple[tuple[float, float], ...] = ()
    source_id: str = ""
    population: str = ""
    weight_kg: float = REFERENCE_WEIGHT_KG

    @property
    def n_compartments(self) -> int:
        return 1 + len(self.transfer_per_h)

    @property
    def clearance_l_per_h(self) -> float:
        return self.k10_per_h * self.central_volume_l

    def rate_matrix(self) -> FloatArray:
        """dA/dt = K A for the amounts A (mg) in [central, peripheral...]."""
        n = self.n_compartments
        K = np.zeros((n, n))
        K[0, 0] = -self.k10_per_h
        for j, (k1j, kj1) in enumerate(self.transfer_per_h, start=1):
            K[0, 0] -= k1j
            K[j, 0] += k1j
            K[0, j] += kj1
            K[j, j] -= kj1
        return K

    def disposition_half_lives_h(self) -> list[float]:
        """Half-lives of the exponential phases (alpha, beta, ...), shortest first."""
        rates = np.sort(-np.linalg.eigvals(self.rate_matrix()).real)[::-1]
        return sorted(math.log(2) / r for r in rates)


_RATE_FACTOR = {"1/min": MINUTES_PER_HOUR, "1/h": 1.0}


class ModelRangeError(ValueError):
    """A model was asked about a person or a dose outside the population it was fitted to."""


class ModelRangeWarning(UserWarning):
    """A model is used where its fitted population's range is not known (an extrapolation of unknown extent)."""


@dataclass(frozen=True)
class ModelValidity:
    """Who a model was fitted to (``data/pk_model_validity.csv``); ``None`` where the range was not seen."""

    model_id: str
    age_min_y: float | None
    age_max_y: float | None
    weight_min_kg: float | None
    weight_max_kg: float | None
    setting: str
    source_id: str
    note: str | None


def model_validity(model_id: str) -> ModelValidity:
    """The validity range of a model; every model in ``pk_models.csv`` except label summaries has one."""
    row = load_table("pk_model_validity").row(model_id)
    return ModelValidity(**{name: row[name] for name in ModelValidity.__dataclass_fields__})


def cite_model(model_id: str) -> str:
    """The citation of a model's validity row, e.g. '[perezruixo2021; nct02343289]'."""
    return f"[{model_validity(model_id).source_id.replace(';', '; ')}]"


def check_model_range(model_id: str, weight_kg: float = REFERENCE_WEIGHT_KG, age_y: float | None = None) -> None:
    """Refuse a weight or age outside the model's fitted population; warn where that range was not seen.

    >>> check_model_range("perezruixo_esketamine", weight_kg=3)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ketamine_course.pk.ModelRangeError: The perezruixo_esketamine model was fitted to people weighing 39-170 kg;
    3 kg lies outside it [perezruixo2021; nct02343289]
    """
    weight = _positive("weight_kg", weight_kg)
    valid = model_validity(model_id)
    source = cite_model(model_id)
    for value, low, high, what, unit in (
        (weight, valid.weight_min_kg, valid.weight_max_kg, "weighing", "kg"),
        (age_y, valid.age_min_y, valid.age_max_y, "aged", "years"),
    ):
        if value is None:
            continue
        too_low = low is not None and value < low
        too_high = high is not None and value > high
        if too_low or too_high:
            span = (
                f"{low:g}-{high:g}" if low is not None and high is not None
                else (f"at least {low:g}" if too_low else f"at most {high:g}")
            )
            raise ModelRangeError(
                f"The {model_id} model was fitted to people {what} {span} {unit}; "
                f"{value:g} {unit} lies outside it {source}"
            )
    if valid.weight_min_kg is None and not math.isclose(weight, REFERENCE_WEIGHT_KG):
        warnings.warn(
            f"The weights of the people the {model_id} model was fitted to were not seen {source}; "
            f"at {weight:g} kg it is an extrapolation of unknown extent.",
            ModelRangeWarning,
            stacklevel=3,
        )


def compartment_model(
    model_id: str, weight_kg: float = REFERENCE_WEIGHT_KG, age_y: float | None = None
) -> CompartmentModel:
    """A published model from ``data/pk_models.csv``, scaled to ``weight_kg`` where volumes are per kg.

    Refuses a weight or age outside the population the model was fitted to (``pk_model_validity.csv``).
    """
    weight = _positive("weight_kg", weight_kg)
    rows = load_table("pk_models").where(model_id=model_id)
    if not rows:
        known = sorted(set(load_table("pk_models").column("model_id")))
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(known)}")
    params = {r["parameter"]: r for r in rows}
    structure = rows[0]["structure"]
    if structure in ("one-compartment", "two-compartment", "three-compartment"):
        check_model_range(model_id, weight, age_y)
    sources = ";".join(dict.fromkeys(s for r in rows for s in r["source_id"].split(";")))

    def volume(name: str) -> float:
        row = params[name]
        return row["value"] * weight if row["unit"] == "L/kg" else row["value"]

    if structure == "one-compartment":
        v = volume("V")
        k = elimination_rate_per_h(params["half_life"]["value"])
        return CompartmentModel(model_id, v, k, (), sources, rows[0]["population"], weight)
    if structure not in ("two-compartment", "three-compartment"):
        raise ValueError(f"{model_id} is a {structure} entry, not a compartment model")

    def rate(name: str) -> float:
        row = params[name]
        return row["value"] * _RATE_FACTOR[row["unit"]]

    transfers = [(rate("k12"), rate("k21"))]
    if structure == "three-compartment":
        transfers.append((rate("k13"), rate("k31")))
    return CompartmentModel(
        model_id, volume("V1"), rate("k10"), tuple(transfers), sources, rows[0]["population"], weight
    )


def one_compartment_model(volume_l: float, half_life_h: float, model_id: str = "custom") -> CompartmentModel:
    """A one-compartment model from a volume and a half-life."""
    return CompartmentModel(model_id, _positive("volume_l", volume_l), elimination_rate_per_h(half_life_h))


def route_absorption(route_id: str) -> tuple[float, float | None]:
    """(bioavailability, ka_per_h) for a route from ``data/routes.csv``; ka is None for IV."""
    row = load_table("routes").row(route_id)
    return row["bioavailability_fraction"], row["ka_per_h"]


@dataclass(frozen=True)
class SimulationResult:
    """Concentrations on the requested time grid."""

    time_h: FloatArray
    conc_ng_per_ml: FloatArray
    amounts_mg: FloatArray = field(repr=False, default_factory=lambda: np.zeros(0))


def _system(model: CompartmentModel, dose: Dose) -> tuple[FloatArray, FloatArray]:
    """Rate matrix and input vector for one dose. States: [central, peripherals..., (depot)]."""
    base = model.rate_matrix()
    n = model.n_compartments
    has_depot = dose.ka_per_h is not None
    size = n + int(has_depot)
    K = np.zeros((size, size))
    K[:n, :n] = base
    entry = np.zeros(size)  # where the dose goes
    if has_depot:
        ka = float(dose.ka_per_h)  # type: ignore[arg-type]
        K[n, n] = -ka
        K[0, n] = dose.bioavailability * ka
        entry[n] = 1.0
    else:
        entry[0] = dose.bioavailability
    return K, entry


def _propagate(K: FloatArray, state: FloatArray, input_rate: FloatArray, offsets: FloatArray) -> FloatArray:
    """States at the sorted, non-negative ``offsets`` from ``state`` under dx/dt = K x + input_rate.

    The augmented matrix [[K, u], [0, 0]] turns the constant input into part
    of one matrix exponential; steps of equal length reuse one exponential.
    """
    from scipy.linalg import expm

    size = len(state)
    augmented = np.zeros((size + 1, size + 1))
    augmented[:size, :size] = K
    augmented[:size, size] = input_rate
    current = np.append(state, 1.0)
    out = np.empty((len(offsets), size))
    cache: dict[float, FloatArray] = {}
    previous = 0.0
    for i, offset in enumerate(offsets):
        step = round(float(offset) - previous, 12)
        if step > 0:
            if step not in cache:
                cache[step] = expm(augmented * step)
            current = cache[step] @ current
        out[i] = current[:size]
        previous = float(offset)
    return out


def _input_response(
    K: FloatArray, amounts_mg: FloatArray, start_h: float, duration_h: float, t: FloatArray
) -> FloatArray:
    """States on the sorted grid ``t`` after ``amounts_mg`` enter the states at ``start_h``,
    all at once (``duration_h`` 0) or at a constant rate over ``duration_h``."""
    states = np.zeros((len(t), len(amounts_mg)))
    after = t >= start_h
    if not np.any(after):
        return states
    offsets = t[after] - start_h
    zero = np.zeros(len(amounts_mg))
    if duration_h == 0:
        states[after] = _propagate(K, amounts_mg, zero, offsets)
        return states
    rate = amounts_mg / duration_h
    during = offsets <= duration_h
    end_state = _propagate(K, zero, rate, np.array([duration_h]))[0]
    part = np.empty((len(offsets), len(amounts_mg)))
    part[during] = _propagate(K, zero, rate, offsets[during])
    part[~during] = _propagate(K, end_state, zero, offsets[~during] - duration_h)
    states[after] = part
    return states


def _sorted(time_h: ArrayLike) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """The times, the same sorted, and the permutation that puts sorted results back in the caller's order."""
    t = _times(time_h)
    order = np.argsort(t, kind="stable")
    unsort = np.empty_like(order)
    unsort[order] = np.arange(len(order))
    return t, t[order], unsort


def simulate(model: CompartmentModel, doses: Sequence[Dose], time_h: ArrayLike) -> SimulationResult:
    """Plasma concentrations of a linear compartment model for any schedule of doses.

    Each dose is solved exactly with the matrix exponential and the results
    are summed (superposition holds because the model is linear).
    """
    if not doses:
        raise ValueError("give at least one Dose")
    t, t_sorted, unsort = _sorted(time_h)
    n = model.n_compartments
    amounts = np.zeros((len(t), n))
    for dose in doses:
        K, entry = _system(model, dose)
        amounts += _input_response(K, entry * dose.amount_mg, dose.time_h, dose.duration_h, t_sorted)[:, :n]
    parent = np.clip(amounts[:, 0], 0, None) * NG_PER_ML_PER_MG_PER_L / model.central_volume_l
    return SimulationResult(t, parent[unsort], amounts[unsort])


# --------------------------------------------------------------------------
# Esketamine and noresketamine: the population model of Perez-Ruixo et al. 2021
# --------------------------------------------------------------------------

ESKETAMINE_MODEL_ID = "perezruixo_esketamine"
_ESK_STATES = ("nasal", "swallowed", "oral", "central", "shallow", "deep", "liver", "nor_central", "nor_peripheral")
_ESK = {name: i for i, name in enumerate(_ESK_STATES)}
_ESK_ROUTES = ("intranasal", "iv", "oral")


@dataclass(frozen=True)
class EsketamineDose:
    """One esketamine dose: ``intranasal`` (a session of 28 mg devices), ``iv`` (over ``duration_h``) or ``oral``
    (solution)."""

    time_h: float
    amount_mg: float
    route: str = "intranasal"
    duration_h: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_h):
            raise ValueError("dose time_h must be finite")
        _positive("amount_mg", self.amount_mg)
        if self.route not in _ESK_ROUTES:
            raise ValueError(f"route must be one of {', '.join(_ESK_ROUTES)}; got {self.route!r}")
        if self.duration_h < 0 or not math.isfinite(self.duration_h):
            raise ValueError("duration_h must be zero (bolus) or positive (infusion)")
        if self.duration_h and self.route != "iv":
            raise ValueError("only an IV dose can be given over a duration")


@dataclass(frozen=True)
class EsketamineModel:
    """Typical-value parameters of the Perez-Ruixo 2021 model for one (non-Asian) person of a given age.

    Rate constants are in 1/h, volumes in L, flows in L/h, durations in h.
    """

    params: Mapping[str, float]
    age_y: float
    source_id: str

    @property
    def hepatic_flow_l_per_h(self) -> float:
        """Qh, lowered by 2.19 L/h for each year of age above 60."""
        p = self.params
        return p["Qh"] - p["Qh_decrease_per_year_over_60"] * max(0.0, self.age_y - 60)

    @property
    def hepatic_extraction(self) -> float:
        """Well-stirred extraction E = CLint / (Qh + CLint), CLint = Vh (kel + kmet)."""
        p = self.params
        intrinsic = p["Vh"] * (p["kel"] + p["kmet"])
        return intrinsic / (self.hepatic_flow_l_per_h + intrinsic)

    @property
    def clearance_l_per_h(self) -> float:
        """Systemic clearance Qh x E."""
        return self.hepatic_flow_l_per_h * self.hepatic_extraction

    def nasal_fraction(self, amount_mg: float) -> float:
        """Fraction of a nasal session absorbed through the nose: FRn for the first device, FRn x 0.62 for each later
        one."""
        per_device = _ESKETAMINE_DEVICE_MG
        devices = amount_mg / per_device
        first, factor = self.params["FRn"], self.params["FRn_later_device_factor"]
        return first * (1 + (devices - 1) * factor) / devices if devices > 1 else first

    def rate_matrix(self) -> FloatArray:
        """dA/dt = K A over the states nasal, swallowed, oral, central, shallow, deep, liver, noresketamine central and
        peripheral."""
        p, s = self.params, _ESK
        qh = self.hepatic_flow_l_per_h
        K = np.zeros((len(_ESK_STATES), len(_ESK_STATES)))

        def flow(src: str, dst: str, rate: float) -> None:
            K[s[src], s[src]] -= rate
            K[s[dst], s[src]] += rate

        flow("nasal", "central", p["ka_n"])
        flow("swallowed", "liver", p["ka_sw"])
        flow("oral", "liver", p["ka_po"])
        flow("central", "shallow", p["Q1"] / p["Vc"])
        flow("shallow", "central", p["Q1"] / p["Vp1"])
        flow("central", "deep", p["Q2"] / p["Vc"])
        flow("deep", "central", p["Q2"] / p["Vp2"])
        flow("central", "liver", qh / p["Vc"])
        flow("liver", "central", qh / p["Vh"])
        K[s["liver"], s["liver"]] -= p["kel"]  # to other metabolites (leaves the system)
        flow("liver", "nor_central", p["kmet"])
        K[s["nor_central"], s["nor_central"]] -= p["CLn"] / p["Vcn"]
        flow("nor_central", "nor_peripheral", p["Q3"] / p["Vcn"])
        flow("nor_peripheral", "nor_central", p["Q3"] / p["Vpn"])
        return K

    def inputs(self, dose: EsketamineDose) -> list[tuple[FloatArray, float]]:
        """(amounts into each state, duration) for one dose, as the paper's absorption scheme describes."""
        p, s = self.params, _ESK
        size = len(_ESK_STATES)

        def into(state: str, amount: float) -> FloatArray:
            vector = np.zeros(size)
            vector[s[state]] = amount
            return vector

        if dose.route == "iv":
            return [(into("central", dose.amount_mg), dose.duration_h)]
        if dose.route == "oral":
            return [(into("oral", p["Fgut"] * dose.amount_mg), p["Dpo"])]
        nasal = self.nasal_fraction(dose.amount_mg)
        return [
            (into("nasal", nasal * dose.amount_mg), 0.0),
            (into("swallowed", (1 - nasal) * p["Fgut"] * dose.amount_mg), p["Dsw"]),
        ]


@dataclass(frozen=True)
class EsketamineResult:
    """Esketamine and noresketamine plasma concentrations (ng/mL) on the requested grid."""

    time_h: FloatArray
    esketamine_ng_per_ml: FloatArray
    noresketamine_ng_per_ml: FloatArray


_ESKETAMINE_DEVICE_MG = 28.0
"""One Spravato device (``data/vials.csv``, spravato_device); the model's FRn is per device."""


def esketamine_model(age_y: float = 45.0, weight_kg: float = REFERENCE_WEIGHT_KG) -> EsketamineModel:
    """The Perez-Ruixo 2021 model (typical non-Asian adult) for a person of this age and weight.

    Weight is not a covariate of the model but is checked against the
    weights it was fitted to; so is age.
    """
    check_model_range(ESKETAMINE_MODEL_ID, weight_kg=weight_kg, age_y=age_y)
    rows = load_table("pk_models").where(model_id=ESKETAMINE_MODEL_ID)
    params = {r["parameter"]: float(r["value"]) for r in rows}
    return EsketamineModel(params, float(age_y), rows[0]["source_id"])


_ESK_ROUTE_WORDS = {"intranasal": "intranasal", "iv": "IV", "oral": "oral solution"}
"""How ``pk_model_validity.csv`` (and the error messages) name each route."""


def esketamine_dose_range_mg(route: str) -> tuple[float, float]:
    """The doses (mg, lowest and highest) the esketamine model was fitted to by this route; the model refuses others.

    Read from the one place that states them, the model's ``setting`` in ``data/pk_model_validity.csv``
    ("... intranasal 14-112 mg per session, IV 28 mg ..., oral solution 84 mg").

    >>> esketamine_dose_range_mg("intranasal")
    (14.0, 112.0)
    """
    setting = model_validity(ESKETAMINE_MODEL_ID).setting
    words = re.escape(_ESK_ROUTE_WORDS[route])
    found = re.search(rf"\b{words} (\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? mg\b", setting)
    if found is None:
        raise DataError(f"data/pk_model_validity.csv, {ESKETAMINE_MODEL_ID}, column 'setting': "
                        f"names no {_ESK_ROUTE_WORDS[route]} dose (as '{_ESK_ROUTE_WORDS[route]} LOW-HIGH mg' "
                        f"or '{_ESK_ROUTE_WORDS[route]} DOSE mg')")
    low = float(found.group(1))
    return low, float(found.group(2) or low)


def _check_esketamine_dose(dose: EsketamineDose) -> None:
    low, high = esketamine_dose_range_mg(dose.route)
    if not (low - 1e-9 <= dose.amount_mg <= high + 1e-9):
        studied = f"{low:g}-{high:g} mg" if low != high else f"{low:g} mg only"
        raise ModelRangeError(
            f"The esketamine model was fitted to {_ESK_ROUTE_WORDS[dose.route]} doses of {studied}; "
            f"{dose.amount_mg:g} mg lies outside "
            f"what it was fitted to {cite_model(ESKETAMINE_MODEL_ID)}"
        )


def simulate_esketamine(
    doses: Sequence[EsketamineDose], time_h: ArrayLike, age_y: float = 45.0, weight_kg: float = REFERENCE_WEIGHT_KG
) -> EsketamineResult:
    """Typical esketamine and noresketamine concentrations for any schedule of doses (Perez-Ruixo 2021).

    Noresketamine parameters are *apparent* (scaled by the unknown fraction
    formed): the model reproduces the paper's noresketamine peaks but
    overstates its 24-hour AUC by about 1.4-1.5 times (see the test and the lesson).
    """
    if not doses:
        raise ValueError("give at least one EsketamineDose")
    model = esketamine_model(age_y, weight_kg)
    for dose in doses:
        _check_esketamine_dose(dose)
    t, t_sorted, unsort = _sorted(time_h)
    K = model.rate_matrix()
    amounts = np.zeros((len(t), len(_ESK_STATES)))
    for dose in doses:
        for vector, duration in model.inputs(dose):
            amounts += _input_response(K, vector, dose.time_h, duration, t_sorted)
    p = model.params
    parent = np.clip(amounts[:, _ESK["central"]], 0, None) * NG_PER_ML_PER_MG_PER_L / p["Vc"]
    metabolite = np.clip(amounts[:, _ESK["nor_central"]], 0, None) * NG_PER_ML_PER_MG_PER_L / p["Vcn"]
    return EsketamineResult(t, parent[unsort], metabolite[unsort])
