"""Receptor occupancy and trial statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketamine_course import evidence, receptor
from ketamine_course.data import load_table


def test_occupancy_is_half_at_ki() -> None:
    for form in ("S-ketamine", "R-ketamine"):
        ki = receptor.ki_um(form)
        conc_ng_per_ml = ki * 237.7
        assert float(receptor.occupancy_from_ng_per_ml(conc_ng_per_ml, form)) == pytest.approx(0.5)


def test_racemic_lies_between_its_enantiomers_and_inverts() -> None:
    conc = np.linspace(1, 3000, 50)
    s = receptor.occupancy_from_ng_per_ml(conc, "S-ketamine")
    r = receptor.occupancy_from_ng_per_ml(conc, "R-ketamine")
    rac = receptor.occupancy_from_ng_per_ml(conc, "racemic")
    assert np.all((r < rac) & (rac < s))
    half = receptor.conc_ng_per_ml_for_occupancy(0.5, "racemic")
    assert float(receptor.occupancy_from_ng_per_ml(half, "racemic")) == pytest.approx(0.5)


def test_occupancy_uses_unbound_fraction_and_refuses_bad_input() -> None:
    total = receptor.occupancy_from_ng_per_ml(185, "racemic")
    free = receptor.occupancy_from_ng_per_ml(185, "racemic", unbound_fraction=0.53)
    assert free < total
    with pytest.raises(ValueError, match="form must be one of"):
        receptor.occupancy_from_ng_per_ml(185, "ketamine")
    with pytest.raises(ValueError, match="not negative"):
        receptor.occupancy_from_ng_per_ml(-1)
    with pytest.raises(ValueError, match="fraction, not a percentage"):
        receptor.conc_ng_per_ml_for_occupancy(50)


@given(st.floats(0, 1e5))
def test_occupancy_is_a_fraction_and_monotonic(conc) -> None:
    pair = receptor.occupancy_from_ng_per_ml([conc, conc * 1.01 + 1e-3], "racemic")
    assert 0 <= pair[0] < 1 and pair[0] < pair[1]


def test_nnt_from_a_trial_in_the_data_matches_its_report() -> None:
    """Grunebaum 2018 reported NNT 4 for 55% vs 30% SSI response."""
    trial = load_table("trials").row("grunebaum2018")
    nnt = evidence.number_needed_to_treat(trial["event_drug_pct"] / 100, trial["event_control_pct"] / 100)
    assert round(nnt) == 4


def test_nnt_interval_and_harm() -> None:
    result = evidence.nnt_with_interval(22, 40, 12, 40)
    assert result.nnt == pytest.approx(4)
    assert result.nnt_low < result.nnt < result.nnt_high
    assert not result.crosses_no_effect
    null = evidence.nnt_with_interval(10, 40, 9, 40)
    assert null.crosses_no_effect and null.nnt_high < 0  # the interval runs through infinity into harm
    assert evidence.number_needed_to_treat(0.3, 0.3) == math.inf
    assert evidence.number_needed_to_treat(0.2, 0.3) == pytest.approx(-10)


def test_percent_given_for_a_fraction_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a percentage \(55% is 0.55\)"):
        evidence.risk_difference(55, 30)
    with pytest.raises(ValueError, match="events <= total"):
        evidence.odds_ratio(41, 40, 12, 40)


def test_odds_ratio_matches_hand_calculation_and_handles_zero_cells() -> None:
    result = evidence.odds_ratio(22, 40, 12, 40)
    assert result.odds_ratio == pytest.approx((22 * 28) / (18 * 12))
    assert result.ci_low < result.odds_ratio < result.ci_high
    zero = evidence.odds_ratio(4, 8, 0, 7)  # Rodriguez 2013: 50% vs 0%
    assert math.isfinite(zero.odds_ratio) and zero.odds_ratio > 1


def test_pooling_midazolam_controlled_odds_ratios() -> None:
    trials = load_table("trials")
    rows = [r for r in trials if r["odds_ratio"] is not None and r["or_ci_low"] is not None]
    pooled = evidence.pooled_odds_ratio(
        [r["odds_ratio"] for r in rows], [r["or_ci_low"] for r in rows], [r["or_ci_high"] for r in rows]
    )
    assert min(r["odds_ratio"] for r in rows) <= pooled.estimate <= max(r["odds_ratio"] for r in rows)
    assert pooled.ci_low < pooled.estimate < pooled.ci_high
    assert pooled.tau_squared >= 0 and 0 <= pooled.i_squared <= 1
    fixed = evidence.pooled_odds_ratio([2.0, 2.0], [1.0, 1.0], [4.0, 4.0], method="fixed")
    assert fixed.estimate == pytest.approx(2.0)
    # two identical studies: the pooled interval is narrower by sqrt(2) on the log scale
    se_one = evidence.log_odds_ratio_se_from_interval(1.0, 4.0)
    assert math.log(fixed.ci_high / fixed.estimate) == pytest.approx(1.959964 * se_one / math.sqrt(2), rel=1e-4)
    with pytest.raises(ValueError):
        evidence.pooled_odds_ratio([2.0], [1.0], [4.0])


def test_pooling_the_two_transform_trials() -> None:
    """TRANSFORM-1 failed alone; pooled with TRANSFORM-2 the MADRS difference lies between them, and the interval is narrower."""
    trials = load_table("trials")
    rows = [trials.row("transform2"), trials.row("transform1")]
    pooled = evidence.pooled_difference([r["effect"] for r in rows], [r["ci_low"] for r in rows], [r["ci_high"] for r in rows])
    assert rows[1]["effect"] > pooled.estimate > rows[0]["effect"]
    assert pooled.ci_high < 0  # the pooled interval excludes no effect
    width = pooled.ci_high - pooled.ci_low
    assert all(width < r["ci_high"] - r["ci_low"] for r in rows)
    with pytest.raises(ValueError, match="ci_low < ci_high"):
        evidence.pooled_difference([1.0, 2.0], [0.0, 3.0], [2.0, 1.0])
