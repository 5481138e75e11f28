"""The virtual population against closed forms, the package's own PK, and the linked plasma-occupancy timeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketamine_course import pk, population, receptor
from ketamine_course.data import load_table
from ketamine_course.widgets import ExposureTimeline, PopulationExplorer

# How fast a population redraw (under 100 ms for 1000 people) is measured by ./course bench (benchmarks/run.py), never asserted here:
# wall-clock limits in unit tests fail on a busy machine.


def test_variability_comes_from_the_cited_table() -> None:
    spread = population.variability()
    rows = {r["parameter"]: r for r in load_table("pk_variability").where(variability_id=population.VARIABILITY_ID)}
    assert spread.omega2_v1 == rows["omega2_V1"]["value"] and spread.omega2_cl == rows["omega2_CL"]["value"]
    assert spread.source_id == "otto2021" and spread.verified == "secondary"
    assert spread.cv_v1_percent == pytest.approx(100 * math.sqrt(math.exp(0.084) - 1))
    with pytest.raises(ValueError, match="no between-subject variability named"):
        population.variability("nobody2099")


def test_medians_and_spread_of_the_log_normal_parameters_match_their_closed_forms() -> None:
    spread = population.variability()
    people = population.sample_population(100_000, seed=1)
    typical = pk.compartment_model(population.TYPICAL_MODEL_ID, weight_kg=70)
    # remove the weight covariate: what is left is exp(eta), whose median is 1 and whose log has variance omega^2
    scale = people.weight_kg / 70
    eta_v = np.log(people.central_volume_l / (typical.central_volume_l * scale**spread.weight_exponent_v1))
    eta_cl = np.log(people.clearance_l_per_h / (typical.clearance_l_per_h * scale**spread.weight_exponent_cl))
    assert np.median(np.exp(eta_v)) == pytest.approx(1, abs=0.005)
    assert np.median(np.exp(eta_cl)) == pytest.approx(1, abs=0.005)
    assert np.var(eta_v) == pytest.approx(spread.omega2_v1, rel=0.02)
    assert np.var(eta_cl) == pytest.approx(spread.omega2_cl, rel=0.02)
    assert np.cov(eta_v, eta_cl)[0, 1] == pytest.approx(spread.cov_v1_cl, rel=0.05)
    assert np.mean(people.weight_kg) == pytest.approx(spread.weight_mean_kg, abs=0.1)
    assert people.weight_kg.min() >= spread.weight_mean_kg - 2 * spread.weight_sd_kg - 1e-9


def test_a_seed_gives_the_same_people_and_a_larger_population_keeps_the_first_ones() -> None:
    a = population.sample_population(50, seed=7)
    b = population.sample_population(200, seed=7)
    np.testing.assert_array_equal(a.clearance_l_per_h, b.clearance_l_per_h[:50])
    assert not np.array_equal(a.clearance_l_per_h, population.sample_population(50, seed=8).clearance_l_per_h)


@pytest.mark.parametrize("duration_h", [0.0, 40 / 60])
def test_each_curve_equals_the_package_simulation_of_that_person(duration_h: float) -> None:
    people = population.sample_population(20, seed=3)
    time_h = np.linspace(0, 10, 201)
    conc = population.concentrations_ng_per_ml(people, 0.5, duration_h, time_h)
    for i in (0, 7, 19):
        dose = pk.Dose(0.0, 0.5 * people.weight_kg[i], duration_h=duration_h)
        expected = pk.simulate(people.person(i), [dose], time_h).conc_ng_per_ml
        np.testing.assert_allclose(conc[i], expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("dose_mg_per_kg", "threshold"), [(0.5, 250.0), (1.0, 1200.0), (2.0, 1200.0), (0.25, 100.0)])
def test_bolus_band_shares_match_the_log_normal_closed_form(dose_mg_per_kg: float, threshold: float) -> None:
    peaks = population.peak_ng_per_ml(population.sample_population(100_000, seed=2), dose_mg_per_kg, 0.0)
    assert np.mean(peaks > threshold) == pytest.approx(population.bolus_share_above(threshold, dose_mg_per_kg), abs=0.005)


def test_bolus_median_peak_is_the_typical_persons_peak() -> None:
    typical = pk.compartment_model(population.TYPICAL_MODEL_ID, weight_kg=70)
    peaks = population.peak_ng_per_ml(population.sample_population(100_000, seed=4), 1.0, 0.0)
    assert np.median(peaks) == pytest.approx(1000 * 70 / typical.central_volume_l, rel=0.005)


def test_band_shares_count_each_band_and_the_people_in_none() -> None:
    shares = population.band_shares([50, 120, 200, 500, 1500])
    assert shares == {"analgesia": 0.2, "dissociation": 0.4, "anaesthesia": 0.2, "none": 0.4}
    with pytest.raises(ValueError, match="empty"):
        population.band_shares([])


def test_bad_inputs_are_refused_in_plain_words() -> None:
    with pytest.raises(ValueError, match="between 1 and 100000"):
        population.sample_population(0)
    with pytest.raises(TypeError, match="whole number"):
        population.sample_population(10.5)  # type: ignore[arg-type]
    people = population.sample_population(5)
    with pytest.raises(ValueError, match="duration_h"):
        population.concentrations_ng_per_ml(people, 0.5, -1, [0, 1])
    with pytest.raises(ValueError, match="dose_mg_per_kg"):
        population.concentrations_ng_per_ml(people, 0, 0, [0, 1])


def test_time_falls_below_matches_the_closed_form_of_a_bolus() -> None:
    # one compartment: C = C0 exp(-k t); S-ketamine occupancy falls below theta when C = Ki theta / (1 - theta)
    c0, half_life = 500.0, 2.5
    time_h = np.linspace(0, 24, 24001)
    conc = pk.concentration_iv_bolus_ng_per_ml(c0 / 1000 * 100, 100, half_life, time_h)
    occupancy = receptor.occupancy_from_ng_per_ml(conc, "S-ketamine")
    crossing = receptor.conc_ng_per_ml_for_occupancy(0.5, "S-ketamine")
    expected = math.log(c0 / crossing) / pk.elimination_rate_per_h(half_life)
    assert receptor.time_falls_below_h(time_h, occupancy, 0.5) == pytest.approx(expected, abs=1e-4)
    assert receptor.time_falls_below_h(time_h, occupancy, 0.99) is None
    with pytest.raises(ValueError, match="same length"):
        receptor.time_falls_below_h([0, 1], [0.5], 0.2)


def test_timeline_curves_are_the_packages_pk_and_receptor_functions() -> None:
    timeline = ExposureTimeline()
    plasma, racemic, s_form = timeline.curves()
    model = pk.compartment_model("clements_2cmt", weight_kg=70)
    expected = pk.simulate(model, [pk.Dose(0, 0.5 * 70, duration_h=40 / 60)], timeline.time_h).conc_ng_per_ml
    np.testing.assert_allclose(plasma, expected)
    np.testing.assert_allclose(racemic, receptor.occupancy_from_ng_per_ml(expected, "racemic"))
    np.testing.assert_allclose(s_form, receptor.occupancy_from_ng_per_ml(expected, "S-ketamine"))
    x, y = timeline.occ_racemic.get_data()
    np.testing.assert_allclose(np.asarray(y), 100 * racemic)
    below = receptor.time_falls_below_h(timeline.time_h, racemic, 0.2)
    assert f"falls below 20% at {round(below, 2):g} h" in timeline.readout.value
    timeline.threshold_slider.value = 50
    assert "falls below 50%" in timeline.readout.value
    timeline.regimen_dropdown.value = "ketalar_iv_induction"
    assert timeline.duration_dropdown.value == 0.0 and timeline.dose_slider.value == 2.0
    assert "falls below 50% at" in timeline.readout.value
    timeline.threshold_slider.value = 20
    assert "stays above 20% for the 8 h shown" in timeline.readout.value


def test_population_widget_reports_shares_that_match_the_package() -> None:
    explorer = PopulationExplorer(n_people=200)
    people, conc = explorer.simulate()
    assert len(people) == 200 and conc.shape == (200, explorer.time_h.size)
    shares = population.band_shares(population.peak_ng_per_ml(people, 0.5, 40 / 60))
    assert f"dissociation (100-250 ng/mL): {round(100 * shares['dissociation'], 1):g}%" in explorer.readout.value
    median = np.asarray(explorer.median.get_data()[1])
    np.testing.assert_allclose(median, np.median(conc, axis=0))
    before = explorer.plot.image.value
    explorer.people_slider.value = 1000
    assert "1000 people" in explorer.readout.value and explorer.plot.image.value != before
    explorer.regimen_dropdown.value = "ketalar_iv_induction"
    assert "general anaesthesia (1200-2400 ng/mL): 0%" not in explorer.readout.value
