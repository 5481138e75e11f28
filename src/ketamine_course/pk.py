"""Pharmacokinetic models of ketamine, from the closed forms a learner can read to the published multi-compartment models.

Units throughout: time in hours (``_h``), doses in mg, volumes in L,
concentrations in ng/mL. Since 1 mg/L = 1000 ng/mL, ``C = 1000 * amount_mg / volume_l``.

Closed forms (one compartment, elimination rate ``k = ln 2 / t_half``):

* IV bolus: ``C(t) = D/V * exp(-k t)``
* zero-order infusion of ``D`` over ``T``: ``C(t) = R/CL * (1 - exp(-k t))`` for ``t <= T``, ``R = D/T``,
  then first-order decline from ``C(T)``
* first-order absorption (Bateman): ``C(t) = F D ka / (V (ka - k)) * (exp(-k t) - exp(-ka t))``
* repeated doses: the sum of single-dose curves (superposition), because the model is linear.

Published two- and three-compartment models (Clements, Domino) are solved
exactly with the matrix exponential between dose events, so they run as
published, with norketamine formation as one more linear compartment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .data import load_table

__all__ = [
    "NG_PER_ML_PER_MG_PER_L",
    "elimination_rate_per_h",
    "half_life_h_from_rate",
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
    "Metabolite",
    "CompartmentModel",
    "SimulationResult",
    "compartment_model",
    "one_compartment_model",
    "norketamine_metabolite",
    "route_absorption",
    "simulate",
]

NG_PER_ML_PER_MG_PER_L = 1000.0
"""1 mg/L equals 1000 ng/mL."""

MINUTES_PER_HOUR = 60.0

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


def half_life_h_from_rate(rate_per_h: float) -> float:
    """Half-life t_half = ln 2 / k (h)."""
    return math.log(2) / _positive("rate_per_h", rate_per_h)


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
class Metabolite:
    """A metabolite formed from the central compartment (e.g. norketamine).

    ``fraction_metabolised`` of the parent's elimination forms it;
    ``presystemic_fraction`` of the first-pass loss (1 - F) of an absorbed
    dose forms it too. Amounts are in mg parent-equivalents.
    """

    name: str
    fraction_metabolised: float
    clearance_l_per_h: float
    volume_l: float
    presystemic_fraction: float
    source_id: str


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
    weight_kg: float = 70.0

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


def compartment_model(model_id: str, weight_kg: float = 70.0) -> CompartmentModel:
    """A published model from ``data/pk_models.csv``, scaled to ``weight_kg`` where volumes are per kg."""
    weight = _positive("weight_kg", weight_kg)
    rows = load_table("pk_models").where(model_id=model_id)
    if not rows:
        known = sorted(set(load_table("pk_models").column("model_id")))
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(known)}")
    params = {r["parameter"]: r for r in rows}
    structure = rows[0]["structure"]
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
    return CompartmentModel(model_id, volume("V1"), rate("k10"), tuple(transfers), sources, rows[0]["population"], weight)


def one_compartment_model(volume_l: float, half_life_h: float, model_id: str = "custom") -> CompartmentModel:
    """A one-compartment model from a volume and a half-life."""
    return CompartmentModel(model_id, _positive("volume_l", volume_l), elimination_rate_per_h(half_life_h))


def norketamine_metabolite() -> Metabolite:
    """The course's norketamine model (``norketamine_course`` in ``pk_models.csv``)."""
    rows = {r["parameter"]: r for r in load_table("pk_models").where(model_id="norketamine_course")}
    return Metabolite(
        name="norketamine",
        fraction_metabolised=rows["fraction_metabolised"]["value"],
        clearance_l_per_h=rows["CL"]["value"],
        volume_l=rows["V"]["value"],
        presystemic_fraction=rows["presystemic_fraction"]["value"],
        source_id=rows["CL"]["source_id"],
    )


def route_absorption(route_id: str) -> tuple[float, float | None]:
    """(bioavailability, ka_per_h) for a route from ``data/routes.csv``; ka is None for IV."""
    row = load_table("routes").row(route_id)
    return row["bioavailability_fraction"], row["ka_per_h"]


@dataclass(frozen=True)
class SimulationResult:
    """Concentrations on the requested time grid."""

    time_h: FloatArray
    conc_ng_per_ml: FloatArray
    metabolite_ng_per_ml: FloatArray | None = None
    amounts_mg: FloatArray = field(repr=False, default_factory=lambda: np.zeros(0))


def _system(model: CompartmentModel, dose: Dose, metabolite: Metabolite | None) -> tuple[FloatArray, FloatArray]:
    """Rate matrix and input vector for one dose.

    States: [central, peripherals..., (depot), (metabolite)].
    """
    base = model.rate_matrix()
    n = model.n_compartments
    has_depot = dose.ka_per_h is not None
    size = n + int(has_depot) + int(metabolite is not None)
    K = np.zeros((size, size))
    K[:n, :n] = base
    entry = np.zeros(size)  # where the dose goes
    if has_depot:
        depot = n
        ka = float(dose.ka_per_h)  # type: ignore[arg-type]
        K[depot, depot] = -ka
        K[0, depot] = dose.bioavailability * ka
        entry[depot] = 1.0
    else:
        entry[0] = dose.bioavailability
    if metabolite is not None:
        m = size - 1
        K[m, 0] = metabolite.fraction_metabolised * model.k10_per_h
        K[m, m] = -metabolite.clearance_l_per_h / metabolite.volume_l
        if has_depot:
            K[m, n] = (1 - dose.bioavailability) * metabolite.presystemic_fraction * float(dose.ka_per_h)  # type: ignore[arg-type]
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


def _single_dose_states(model: CompartmentModel, dose: Dose, metabolite: Metabolite | None, t: FloatArray) -> FloatArray:
    K, entry = _system(model, dose, metabolite)
    states = np.zeros((len(t), len(entry)))
    after = t >= dose.time_h
    if not np.any(after):
        return states
    offsets = t[after] - dose.time_h
    if dose.duration_h == 0:
        states[after] = _propagate(K, entry * dose.amount_mg, np.zeros(len(entry)), offsets)
        return states
    rate = entry * dose.amount_mg / dose.duration_h
    during = offsets <= dose.duration_h
    end_state = _propagate(K, np.zeros(len(entry)), rate, np.array([dose.duration_h]))[0]
    part = np.empty((len(offsets), len(entry)))
    part[during] = _propagate(K, np.zeros(len(entry)), rate, offsets[during])
    part[~during] = _propagate(K, end_state, np.zeros(len(entry)), offsets[~during] - dose.duration_h)
    states[after] = part
    return states


def simulate(
    model: CompartmentModel,
    doses: Sequence[Dose],
    time_h: ArrayLike,
    metabolite: Metabolite | None = None,
) -> SimulationResult:
    """Plasma concentrations of a linear compartment model for any schedule of doses.

    Each dose is solved exactly with the matrix exponential and the results
    are summed (superposition holds because the model is linear).
    """
    if not doses:
        raise ValueError("give at least one Dose")
    t = _times(time_h)
    order = np.argsort(t, kind="stable")
    t_sorted = t[order]
    n = model.n_compartments
    meta = np.zeros(len(t)) if metabolite is not None else None
    central_and_peripheral = np.zeros((len(t), n))
    for dose in doses:
        states = _single_dose_states(model, dose, metabolite, t_sorted)
        central_and_peripheral += states[:, :n]
        if meta is not None:
            meta += states[:, -1]
    parent = np.clip(central_and_peripheral[:, 0], 0, None) * NG_PER_ML_PER_MG_PER_L / model.central_volume_l
    unsort = np.empty_like(order)
    unsort[order] = np.arange(len(order))
    metabolite_conc = None
    if meta is not None and metabolite is not None:
        metabolite_conc = (np.clip(meta, 0, None) * NG_PER_ML_PER_MG_PER_L / metabolite.volume_l)[unsort]
    return SimulationResult(t, parent[unsort], metabolite_conc, central_and_peripheral[unsort])
