"""NMDA receptor occupancy from plasma concentration, for racemic ketamine and its enantiomers.

Occupancy at equilibrium for a single binding site (the law of mass action):

    occupancy = C / (C + Ki)

with C and Ki in the same molar unit. Racemic ketamine is a 1:1 mixture of
S- and R-ketamine competing for the same site, so

    occupancy = (C_S/Ki_S + C_R/Ki_R) / (1 + C_S/Ki_S + C_R/Ki_R),  C_S = C_R = C/2.

Simplifications a learner should keep in mind: Ki values come from rat-brain
binding assays (Ebert 1997); ketamine is a use-dependent open-channel blocker,
so real block also depends on how often channels open; and only unbound drug
reaches the receptor (pass ``unbound_fraction`` to account for binding).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .data import constant, load_table

__all__ = [
    "FORMS",
    "ki_um",
    "conc_um_from_ng_per_ml",
    "occupancy_fraction",
    "occupancy_racemic_fraction",
    "occupancy_from_ng_per_ml",
    "conc_ng_per_ml_for_occupancy",
    "time_falls_below_h",
]

FORMS = ("racemic", "S-ketamine", "R-ketamine")
"""The forms the occupancy model knows."""


def ki_um(compound: str) -> float:
    """Ki (uM) of a compound from ``data/nmda_affinity.csv`` (e.g. 'S-ketamine')."""
    return float(load_table("nmda_affinity").row(compound)["ki_um"])


def conc_um_from_ng_per_ml(conc_ng_per_ml: ArrayLike, molar_mass_g_per_mol: float | None = None) -> NDArray[np.float64]:
    """Convert ng/mL to umol/L: uM = (ng/mL) / (g/mol). Default molar mass: ketamine base."""
    mass = molar_mass_g_per_mol if molar_mass_g_per_mol is not None else constant("molar_mass_ketamine_base")
    conc = np.asarray(conc_ng_per_ml, dtype=float)
    if np.any(conc < 0) or not np.all(np.isfinite(conc)):
        raise ValueError("concentrations must be finite and not negative")
    return conc / mass


def occupancy_fraction(conc_um: ArrayLike, ki_um_value: float) -> NDArray[np.float64]:
    """Fraction of receptors occupied at equilibrium: C / (C + Ki)."""
    if not (math.isfinite(ki_um_value) and ki_um_value > 0):
        raise ValueError(f"Ki must be a positive number in uM; got {ki_um_value}")
    conc = np.asarray(conc_um, dtype=float)
    if np.any(conc < 0):
        raise ValueError("concentrations must not be negative")
    return conc / (conc + ki_um_value)


def occupancy_racemic_fraction(conc_um: ArrayLike, ki_s_um: float, ki_r_um: float) -> NDArray[np.float64]:
    """Occupancy by a 1:1 mixture of two enantiomers competing for one site."""
    conc = np.asarray(conc_um, dtype=float)
    if np.any(conc < 0):
        raise ValueError("concentrations must not be negative")
    ratio = conc / 2 / ki_s_um + conc / 2 / ki_r_um
    return ratio / (1 + ratio)


def occupancy_from_ng_per_ml(
    conc_ng_per_ml: ArrayLike, form: str = "racemic", unbound_fraction: float = 1.0
) -> NDArray[np.float64]:
    """NMDA occupancy for a total plasma concentration (ng/mL) of racemic, S- or R-ketamine.

    >>> round(float(occupancy_from_ng_per_ml(237.7, "S-ketamine")), 3)  # 1 uM vs Ki 0.30 uM
    0.769
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}; got {form!r}")
    if not (0 < unbound_fraction <= 1):
        raise ValueError(f"unbound_fraction must be in (0, 1]; got {unbound_fraction}")
    conc = conc_um_from_ng_per_ml(conc_ng_per_ml) * unbound_fraction
    if form == "racemic":
        return occupancy_racemic_fraction(conc, ki_um("S-ketamine"), ki_um("R-ketamine"))
    return occupancy_fraction(conc, ki_um(form))


def conc_ng_per_ml_for_occupancy(occupancy: float, form: str = "racemic") -> float:
    """Total plasma concentration (ng/mL) giving a target occupancy (inverse of the above)."""
    if not 0 < occupancy < 1:
        raise ValueError(f"occupancy must be between 0 and 1 (a fraction, not a percentage); got {occupancy}")
    if form == "racemic":
        ki_effective = 2 / (1 / ki_um("S-ketamine") + 1 / ki_um("R-ketamine"))
    elif form in FORMS:
        ki_effective = ki_um(form)
    else:
        raise ValueError(f"form must be one of {', '.join(FORMS)}; got {form!r}")
    return ki_effective * occupancy / (1 - occupancy) * constant("molar_mass_ketamine_base")


def time_falls_below_h(time_h: ArrayLike, values: ArrayLike, threshold: float) -> float | None:
    """First time after the peak at which a sampled curve falls below ``threshold`` (linear interpolation).

    ``None`` when the curve never reaches the threshold or is still at or above it at the last time.
    Works for occupancy fractions and concentrations alike.

    >>> time_falls_below_h([0, 1, 2, 3], [0.1, 0.6, 0.4, 0.2], 0.5)
    1.5
    """
    t = np.asarray(time_h, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.shape != v.shape or t.ndim != 1 or t.size < 2:
        raise ValueError("time_h and values must be one-dimensional and of the same length (at least 2)")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v)) and np.all(np.diff(t) > 0)):
        raise ValueError("time_h must increase and every value must be finite")
    peak = int(np.argmax(v))
    if v[peak] < threshold:
        return None
    after = np.nonzero(v[peak:] < threshold)[0]
    if after.size == 0:
        return None
    i = peak + int(after[0])
    t0, t1, v0, v1 = t[i - 1], t[i], v[i - 1], v[i]
    return float(t0 + (v0 - threshold) / (v0 - v1) * (t1 - t0))
