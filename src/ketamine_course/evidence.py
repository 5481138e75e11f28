"""Trial statistics: risk difference, number needed to treat, odds ratio and pooled estimates.

Proportions are fractions between 0 and 1 (55% is 0.55). Intervals come from
statsmodels (Newcombe's method for a difference of proportions; the usual
log-scale interval for an odds ratio), and pooling uses statsmodels'
meta-analysis module rather than hand-written formulas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "risk_difference",
    "number_needed_to_treat",
    "NntResult",
    "nnt_with_interval",
    "OddsRatio",
    "odds_ratio",
    "log_odds_ratio_se_from_interval",
    "PooledEstimate",
    "pooled_odds_ratio",
    "pooled_difference",
]


def _proportion(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative; got {value}")
    if value > 1:
        hint = f" ({value}% is {value / 100:g})" if value <= 100 else ""
        raise ValueError(f"{name} is a fraction between 0 and 1, not a percentage{hint}; got {value}")
    return float(value)


def _counts(events: int, total: int, name: str) -> None:
    if not (isinstance(events, int) and isinstance(total, int)) or isinstance(events, bool):
        raise ValueError(f"{name}: events and totals must be whole numbers")
    if total <= 0 or events < 0 or events > total:
        raise ValueError(f"{name}: need 0 <= events <= total and total > 0; got {events}/{total}")


def risk_difference(p_treatment: float, p_control: float) -> float:
    """Absolute risk difference p_treatment - p_control (for a good outcome such as response)."""
    return _proportion("p_treatment", p_treatment) - _proportion("p_control", p_control)


def number_needed_to_treat(p_treatment: float, p_control: float) -> float:
    """NNT = 1 / (p_treatment - p_control); infinite when there is no difference.

    A negative value means harm: its magnitude is the number needed to harm.

    >>> round(number_needed_to_treat(0.55, 0.30), 1)
    4.0
    """
    difference = risk_difference(p_treatment, p_control)
    return math.inf if difference == 0 else 1 / difference


@dataclass(frozen=True)
class NntResult:
    """An NNT with the interval of its risk difference.

    When the risk-difference interval crosses zero, the NNT interval runs from
    ``nnt_low`` (benefit) through infinity to a number needed to harm
    (``nnt_high`` is then negative), following Altman (1998).
    """

    risk_difference: float
    rd_low: float
    rd_high: float
    nnt: float
    nnt_low: float
    nnt_high: float

    @property
    def crosses_no_effect(self) -> bool:
        return self.rd_low <= 0 <= self.rd_high


def nnt_with_interval(
    events_treatment: int, n_treatment: int, events_control: int, n_control: int, confidence: float = 0.95
) -> NntResult:
    """NNT from counts, with a Newcombe (hybrid score) interval for the risk difference.

    >>> round(nnt_with_interval(22, 40, 12, 40).nnt, 1)
    4.0
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    _counts(events_treatment, n_treatment, "treatment")
    _counts(events_control, n_control, "control")
    rd = events_treatment / n_treatment - events_control / n_control
    low, high = confint_proportions_2indep(
        events_treatment, n_treatment, events_control, n_control, method="newcomb", compare="diff", alpha=1 - confidence
    )
    nnt = math.inf if rd == 0 else 1 / rd

    def invert(x: float) -> float:
        return math.inf if x == 0 else 1 / x

    return NntResult(rd, float(low), float(high), nnt, invert(float(high)), invert(float(low)))


@dataclass(frozen=True)
class OddsRatio:
    """An odds ratio with its confidence interval."""

    odds_ratio: float
    ci_low: float
    ci_high: float


def odds_ratio(
    events_treatment: int, n_treatment: int, events_control: int, n_control: int, confidence: float = 0.95
) -> OddsRatio:
    """Odds ratio from a 2x2 table (0.5 added to every cell if any is zero).

    >>> round(odds_ratio(22, 40, 12, 40).odds_ratio, 2)
    2.85
    """
    from statsmodels.stats.contingency_tables import Table2x2

    _counts(events_treatment, n_treatment, "treatment")
    _counts(events_control, n_control, "control")
    table = Table2x2(
        [[events_treatment, n_treatment - events_treatment], [events_control, n_control - events_control]],
        shift_zeros=True,
    )
    low, high = table.oddsratio_confint(alpha=1 - confidence)
    return OddsRatio(float(table.oddsratio), float(low), float(high))


def log_odds_ratio_se_from_interval(ci_low: float, ci_high: float, confidence: float = 0.95) -> float:
    """Standard error of log(OR) recovered from a published interval: (ln hi - ln lo) / (2 z)."""
    if not (0 < ci_low < ci_high):
        raise ValueError(f"need 0 < ci_low < ci_high; got {ci_low}, {ci_high}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return (math.log(ci_high) - math.log(ci_low)) / (2 * z)


@dataclass(frozen=True)
class PooledEstimate:
    """A pooled estimate (an odds ratio or a difference) with its interval and heterogeneity."""

    estimate: float
    ci_low: float
    ci_high: float
    tau_squared: float
    i_squared: float
    method: str


def _pool(
    effects: Sequence[float], ses: Sequence[float], method: str, confidence: float, back: Callable[[float], float]
) -> PooledEstimate:
    """Pool study effects with statsmodels' ``combine_effects``; ``back`` maps the pooled scale back (exp for log
    OR)."""
    import numpy as np
    from statsmodels.stats.meta_analysis import combine_effects

    if method not in ("pm", "fixed"):
        raise ValueError(f"method must be 'pm' or 'fixed'; got {method!r}")
    result = combine_effects(
        np.asarray(effects, dtype=float), np.asarray(ses, dtype=float) ** 2, method_re="iterated", use_t=False
    )
    row = result.summary_frame(alpha=1 - confidence).loc["fixed effect" if method == "fixed" else "random effect"]
    return PooledEstimate(
        estimate=back(float(row["eff"])),
        ci_low=back(float(row["ci_low"])),
        ci_high=back(float(row["ci_upp"])),
        tau_squared=float(result.tau2),
        i_squared=max(0.0, float(result.i2)),  # I^2 is defined as max(0, (Q - df) / Q)
        method=method,
    )


def _check_studies(estimates: Sequence[float], ci_lows: Sequence[float], ci_highs: Sequence[float]) -> None:
    if not (len(estimates) == len(ci_lows) == len(ci_highs)) or len(estimates) < 2:
        raise ValueError("give at least two studies, each with an estimate and both interval limits")


def pooled_odds_ratio(
    odds_ratios: Sequence[float],
    ci_lows: Sequence[float],
    ci_highs: Sequence[float],
    method: str = "pm",
    confidence: float = 0.95,
) -> PooledEstimate:
    """Pool published odds ratios on the log scale with statsmodels' ``combine_effects``.

    ``method`` is 'pm' (Paule-Mandel random effects, statsmodels' iterated
    estimator) or 'fixed' (inverse-variance fixed effect). statsmodels'
    DerSimonian-Laird option is not offered: in statsmodels 0.15 it does not
    truncate a negative between-study variance at zero.
    """
    _check_studies(odds_ratios, ci_lows, ci_highs)
    ses = [log_odds_ratio_se_from_interval(lo, hi, confidence) for lo, hi in zip(ci_lows, ci_highs, strict=True)]
    return _pool([math.log(o) for o in odds_ratios], ses, method, confidence, math.exp)


def pooled_difference(
    differences: Sequence[float],
    ci_lows: Sequence[float],
    ci_highs: Sequence[float],
    method: str = "pm",
    confidence: float = 0.95,
) -> PooledEstimate:
    """Pool published mean differences (e.g. MADRS points) with their intervals, via ``combine_effects``.

    The standard error of each study is recovered as (hi - lo) / (2 z).
    """
    from statistics import NormalDist

    _check_studies(differences, ci_lows, ci_highs)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    ses = [(hi - lo) / (2 * z) for lo, hi in zip(ci_lows, ci_highs, strict=True)]
    if any(se <= 0 for se in ses):
        raise ValueError("each interval must have ci_low < ci_high")
    return _pool(differences, ses, method, confidence, lambda x: x)
