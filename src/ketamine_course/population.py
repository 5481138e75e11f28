"""A virtual population: why one mg/kg dose gives different people different concentrations.

Each simulated person gets a body weight and their own central volume and
clearance, drawn log-normally around the typical values of a two-compartment
model (the exponential between-subject model of population analyses):

    V1_i = V1 * (weight_i / W_ref)^a_V * exp(eta_V,i)
    CL_i = CL * (weight_i / W_ref)^a_CL * exp(eta_CL,i),   (eta_V, eta_CL) ~ N(0, Omega)

so the median person has the typical V1 and CL, and ``exp(eta)`` is
log-normal. The variances, their covariance, the weight exponents and the
weight distribution come from ``data/pk_variability.csv``. Peripheral
volume and intercompartmental clearance stay at their typical values (as
in the cited analysis).

Every person's curve is the exact two-compartment solution, computed for
the whole population at once with numpy (no loop over people), so 1000
people take milliseconds. A seed makes the population reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import pk
from .data import load_table

__all__ = [
    "DEFAULT_SEED",
    "TYPICAL_MODEL_ID",
    "VARIABILITY_ID",
    "Variability",
    "Population",
    "variability",
    "sample_population",
    "concentrations_ng_per_ml",
    "peak_ng_per_ml",
    "percentiles_ng_per_ml",
    "RANGE_BANDS",
    "band_shares",
    "bolus_share_above",
]

FloatArray = NDArray[np.float64]

DEFAULT_SEED = 16
"""The seed of the lesson's population, so its numbers are the same on every run."""

TYPICAL_MODEL_ID = "clements_2cmt"
"""The course's two-compartment model for racemic ketamine (typical values of the population)."""

VARIABILITY_ID = "otto2021_s_ketamine"
"""The published between-subject variability the population uses."""

REFERENCE_WEIGHT_KG = pk.REFERENCE_WEIGHT_KG
"""W_ref, the course's reference adult (:data:`ketamine_course.pk.REFERENCE_WEIGHT_KG`)."""

RANGE_BANDS = ("analgesia", "dissociation", "anaesthesia")
"""Concentration bands given as ranges (single observed values have no 'inside')."""


@dataclass(frozen=True)
class Variability:
    """Log-normal between-subject variability of V1 and CL, with weight covariates."""

    variability_id: str
    omega2_v1: float
    omega2_cl: float
    cov_v1_cl: float
    weight_exponent_v1: float
    weight_exponent_cl: float
    weight_mean_kg: float
    weight_sd_kg: float
    analyte: str
    source_id: str
    verified: str

    @property
    def cv_v1_percent(self) -> float:
        """Coefficient of variation of a log-normal V1: 100 sqrt(exp(omega^2) - 1)."""
        return 100 * math.sqrt(math.expm1(self.omega2_v1))

    @property
    def cv_cl_percent(self) -> float:
        """Coefficient of variation of a log-normal CL: 100 sqrt(exp(omega^2) - 1)."""
        return 100 * math.sqrt(math.expm1(self.omega2_cl))

    def covariance(self) -> FloatArray:
        """Omega, the covariance matrix of (eta_V, eta_CL)."""
        return np.array([[self.omega2_v1, self.cov_v1_cl], [self.cov_v1_cl, self.omega2_cl]])


def variability(variability_id: str = VARIABILITY_ID) -> Variability:
    """The between-subject variability of ``data/pk_variability.csv`` for one analysis."""
    rows = load_table("pk_variability").where(variability_id=variability_id)
    if not rows:
        raise ValueError(f"no between-subject variability named {variability_id!r} in data/pk_variability.csv")
    value = {row["parameter"]: float(row["value"]) for row in rows}
    return Variability(
        variability_id=variability_id,
        omega2_v1=value["omega2_V1"],
        omega2_cl=value["omega2_CL"],
        cov_v1_cl=value["cov_V1_CL"],
        weight_exponent_v1=value["weight_exponent_V1"],
        weight_exponent_cl=value["weight_exponent_CL"],
        weight_mean_kg=value["weight_mean"],
        weight_sd_kg=value["weight_sd"],
        analyte=rows[0]["analyte"],
        source_id=rows[0]["source_id"],
        verified=rows[0]["verified"],
    )


@dataclass(frozen=True)
class Population:
    """Simulated people: one entry per person in each array."""

    weight_kg: FloatArray
    central_volume_l: FloatArray
    clearance_l_per_h: FloatArray
    intercompartmental_l_per_h: float
    peripheral_volume_l: float
    seed: int

    def __len__(self) -> int:
        return int(self.weight_kg.size)

    def person(self, index: int) -> pk.CompartmentModel:
        """One person as a :class:`pk.CompartmentModel` (to check against :func:`pk.simulate`)."""
        v1 = float(self.central_volume_l[index])
        q = self.intercompartmental_l_per_h
        return pk.CompartmentModel(
            model_id=f"person_{index}",
            central_volume_l=v1,
            k10_per_h=float(self.clearance_l_per_h[index]) / v1,
            transfer_per_h=((q / v1, q / self.peripheral_volume_l),),
            weight_kg=float(self.weight_kg[index]),
        )


def _count(n_people: int) -> int:
    if isinstance(n_people, bool) or not isinstance(n_people, (int, np.integer)):
        raise TypeError(f"the number of people must be a whole number; got {n_people!r}")
    if not 1 <= n_people <= 100_000:
        raise ValueError(f"the number of people must be between 1 and 100000; got {n_people}")
    return int(n_people)


def sample_population(
    n_people: int,
    seed: int = DEFAULT_SEED,
    spread: Variability | None = None,
    model_id: str = TYPICAL_MODEL_ID,
) -> Population:
    """Draw ``n_people`` people (the first k people are the same for any n >= k with the same seed).

    Weights are normal with the study's mean and SD, kept within 2 SD (the
    people such a study enrols); etas are bivariate normal with covariance Omega.
    """
    n = _count(n_people)
    spread = spread or variability()
    typical = pk.compartment_model(model_id, weight_kg=REFERENCE_WEIGHT_KG)
    if typical.n_compartments != 2:
        raise ValueError(f"the population uses a two-compartment model; {model_id} has {typical.n_compartments}")
    ((k12, k21),) = typical.transfer_per_h
    q = k12 * typical.central_volume_l
    v2 = q / k21
    normals = np.random.default_rng(seed).standard_normal((n, 3))
    z_weight = np.clip(normals[:, 0], -2.0, 2.0)
    weight = spread.weight_mean_kg + spread.weight_sd_kg * z_weight
    eta = normals[:, 1:] @ np.linalg.cholesky(spread.covariance()).T
    scale = weight / REFERENCE_WEIGHT_KG
    v1 = typical.central_volume_l * scale**spread.weight_exponent_v1 * np.exp(eta[:, 0])
    cl = typical.clearance_l_per_h * scale**spread.weight_exponent_cl * np.exp(eta[:, 1])
    return Population(weight, v1, cl, q, v2, seed)


def _exponents(population: Population) -> tuple[FloatArray, FloatArray]:
    """Per person: the disposition rates (alpha, beta) and the central coefficients of a unit bolus.

    Amount in the central compartment after a unit bolus: sum_j c_j exp(-r_j t), with
    r = (alpha, beta) and c = ((alpha - k21), (k21 - beta)) / (alpha - beta).
    """
    v1 = population.central_volume_l
    k10 = population.clearance_l_per_h / v1
    k12 = population.intercompartmental_l_per_h / v1
    k21 = population.intercompartmental_l_per_h / population.peripheral_volume_l
    total = k10 + k12 + k21
    root = np.sqrt(total**2 - 4 * k10 * k21)
    alpha, beta = (total + root) / 2, (total - root) / 2
    rates = np.stack([alpha, beta], axis=1)
    coefficients = np.stack([alpha - k21, k21 - beta], axis=1) / (alpha - beta)[:, None]
    return rates, coefficients


def concentrations_ng_per_ml(
    population: Population, dose_mg_per_kg: float, duration_h: float, time_h: ArrayLike
) -> FloatArray:
    """Plasma concentrations (people x times) after one IV dose in mg/kg, a bolus (``duration_h`` 0) or an infusion.

    Bolus D: A1 = D sum c_j exp(-r_j t). Infusion at R = D/T:
    A1 = R sum c_j (exp(-r_j (t - u)) - exp(-r_j t)) / r_j with u = min(t, T).
    """
    dose = pk._positive("dose_mg_per_kg", dose_mg_per_kg)
    if not (math.isfinite(duration_h) and duration_h >= 0):
        raise ValueError(f"duration_h must be zero (bolus) or a positive number of hours; got {duration_h}")
    t = np.clip(pk._times(time_h), 0, None)[None, None, :]
    rates, coefficients = _exponents(population)
    r, c = rates[:, :, None], coefficients[:, :, None]
    dose_mg = (dose * population.weight_kg)[:, None]
    if duration_h == 0:
        amount = dose_mg * np.einsum("pjt->pt", c * np.exp(-r * t))
    else:
        u = np.minimum(t, duration_h)
        amount = dose_mg / duration_h * np.einsum("pjt->pt", c * (np.exp(-r * (t - u)) - np.exp(-r * t)) / r)
    conc = pk.NG_PER_ML_PER_MG_PER_L * amount / population.central_volume_l[:, None]
    return np.where(pk._times(time_h)[None, :] >= 0, conc, 0.0)


def peak_ng_per_ml(population: Population, dose_mg_per_kg: float, duration_h: float) -> FloatArray:
    """Each person's peak: at the end of the infusion (or at the bolus), where a two-compartment curve peaks."""
    return concentrations_ng_per_ml(population, dose_mg_per_kg, duration_h, [duration_h])[:, 0]


def percentiles_ng_per_ml(conc_ng_per_ml: ArrayLike, percents: Sequence[float] = (5, 50, 95)) -> FloatArray:
    """Pointwise percentiles across people (rows): the median and the 90% band by default."""
    return np.percentile(np.asarray(conc_ng_per_ml, dtype=float), percents, axis=0)


def band_shares(peaks_ng_per_ml: ArrayLike, band_ids: Sequence[str] = RANGE_BANDS) -> Mapping[str, float]:
    """Share of people whose peak lies inside each band (bands overlap, so shares need not add to 1).

    Also gives 'none': the share whose peak lies in none of the bands.
    """
    peaks = np.asarray(peaks_ng_per_ml, dtype=float)
    if peaks.size == 0:
        raise ValueError("no people: the population is empty")
    table = load_table("concentration_bands")
    rows = [table.row(band_id) for band_id in band_ids]
    shares = {
        row["band_id"]: float(np.mean((peaks >= row["low_ng_per_ml"]) & (peaks <= row["high_ng_per_ml"])))
        for row in rows
    }
    inside = np.zeros(peaks.shape, dtype=bool)
    for row in rows:
        inside |= (peaks >= row["low_ng_per_ml"]) & (peaks <= row["high_ng_per_ml"])
    shares["none"] = float(np.mean(~inside))
    return shares


def bolus_share_above(threshold_ng_per_ml: float, dose_mg_per_kg: float, spread: Variability | None = None,
                      model_id: str = TYPICAL_MODEL_ID) -> float:
    """Closed form: the share of people whose bolus peak D/V1 exceeds a threshold.

    With a mg/kg dose and V1 proportional to weight (exponent 1), weight cancels:
    peak = dose_per_kg * W_ref / (V1_ref exp(eta_V)), so P(peak > c) = Phi(ln(peak_typical / c) / omega_V).
    """
    spread = spread or variability()
    if spread.weight_exponent_v1 != 1:
        raise ValueError("the closed form needs V1 proportional to weight")
    typical = pk.compartment_model(model_id, weight_kg=REFERENCE_WEIGHT_KG)
    peak_typical = pk.NG_PER_ML_PER_MG_PER_L * dose_mg_per_kg * REFERENCE_WEIGHT_KG / typical.central_volume_l
    z = math.log(peak_typical / pk._positive("threshold_ng_per_ml", threshold_ng_per_ml)) / math.sqrt(spread.omega2_v1)
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))
