"""Dose arithmetic: right answers, and every kind of bad input refused with the limit and its source."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketamine_course import DISCLAIMER, dosing
from ketamine_course.data import load_table
from ketamine_course.dosing import DoseInputError


def test_disclaimer_says_teaching_only_and_not_advice() -> None:
    assert "teaching only" in DISCLAIMER.lower()
    assert "not medical advice" in DISCLAIMER.lower()


def test_worked_examples() -> None:
    assert dosing.dose_mg(70, 2, "ketalar_iv_induction") == 140
    assert dosing.volume_ml(140, 50) == pytest.approx(2.8)
    # the antidepressant research infusion: 0.5 mg/kg x 70 kg over 40 min, drawn from a 10 mg/mL vial
    # and diluted to the stated 1 mg/mL for the pump
    calc = dosing.calculate_dose(70, 0.5, "antidepressant_research_iv", 10)
    assert (calc.dose_mg, calc.volume_ml, calc.duration_min) == (35, 3.5, 40)
    assert (calc.infusion_concentration_mg_per_ml, calc.infusion_volume_ml) == (1, 35)
    assert calc.rate_ml_per_h == pytest.approx(52.5)
    assert any("research range" in note for note in calc.notes)
    # Ketalar IV induction is a slow push over 60 s: no pump rate
    push = dosing.calculate_dose(70, 2, "ketalar_iv_induction", 10)
    assert (push.duration_min, push.rate_ml_per_h) == (1, None)
    slow = dosing.calculate_dose(70, 2, "ketalar_iv_induction_slow", 10)
    assert slow.duration_min == 4  # 2 mg/kg at 0.5 mg/kg/min
    assert dosing.infusion_dose_rate_mg_per_h(80, 0.25, "acute_pain_iv_infusion") == 20
    assert dosing.pounds_to_kg(154) == pytest.approx(69.85, abs=0.01)


def test_hundred_mg_per_ml_vial_carries_the_dilution_note_for_iv() -> None:
    calc = dosing.calculate_dose(70, 2, "ketalar_iv_induction", 100)
    assert any("diluted" in note and "[ketalar_pi]" in note for note in calc.notes)
    im = dosing.calculate_dose(70, 10, "ketalar_im_induction", 100)
    assert not any("diluted" in note for note in im.notes)


def test_unverified_ranges_say_so() -> None:
    calc = dosing.calculate_dose(70, 4.5, "ed_sedation_im", 100)
    assert any("Not fully verified" in note for note in calc.notes)


def test_esketamine_sessions_follow_the_label() -> None:
    assert dosing.esketamine_session_doses_mg("spravato_trd") == [56, 84]
    assert dosing.esketamine_devices(56) == 2
    assert dosing.esketamine_devices(84, "spravato_mdsi") == 3
    with pytest.raises(DoseInputError, match=r"above the maximum of 84 mg .*\[spravato_pi\]"):
        dosing.esketamine_devices(112)
    with pytest.raises(DoseInputError, match=r"below the minimum of 56 mg"):
        dosing.esketamine_devices(28)
    with pytest.raises(DoseInputError, match=r"not a labelled session dose.*56 or 84 mg"):
        dosing.esketamine_devices(70)


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (-70, r"The weight \(weight_kg\) must be more than 0 kg; you gave -70 kg"),
        (0, r"The weight \(weight_kg\) must be more than 0 kg"),
        (math.nan, "not a number"),
        (math.inf, "infinite"),
        ("70 kg", "must be a number in kg; got str '70 kg'"),
        (None, "must be a number in kg; got nothing"),
        (True, "must be a number in kg; got bool"),
        ([70], "must be a number in kg; got list"),
        (1, r"below the course's input limit of 3 kg \[course_model\]"),
        (2000, r"above the course's input limit of 250 kg \[course_model\]"),
        (330, r"if that was pounds, 330 lb is 149.7 kg"),
    ],
)
def test_bad_weights_are_refused(weight, message) -> None:
    with pytest.raises(DoseInputError, match=message):
        dosing.dose_mg(weight, 2, "ketalar_iv_induction")


@pytest.mark.parametrize(
    ("regimen_id", "per_kg", "message"),
    [
        ("ketalar_iv_induction", 5, r"above the maximum of 4.5 mg/kg .*range 1-4.5 mg/kg \[ketalar_pi\]"),
        ("ketalar_iv_induction", 0.5, r"below the minimum of 1 mg/kg .*\[ketalar_pi\]"),
        ("ketalar_iv_induction", 2000, r"did you enter micrograms\? 2000 ug/kg is 2 mg/kg"),
        ("antidepressant_research_iv", 500, r"did you enter micrograms\? 500 ug/kg is 0.5 mg/kg"),
        ("ketalar_im_induction", 20, r"above the maximum of 13 mg/kg"),
        ("analgesia_im", 4, r"above the maximum of 1 mg/kg .*\[zanos2018\]"),
        ("acute_pain_iv_bolus", 0.5, r"above the maximum of 0.35 mg/kg .*range up to 0.35 mg/kg \[schwenk2018\]"),
        ("antidepressant_research_iv", -0.5, r"The dose \(dose_mg_per_kg\) must be more than 0 mg/kg"),
        ("antidepressant_research_iv", math.nan, "not a number"),
    ],
)
def test_doses_outside_the_labelled_range_are_refused(regimen_id, per_kg, message) -> None:
    with pytest.raises(DoseInputError, match=message):
        dosing.dose_mg(70, per_kg, regimen_id)


def test_wrong_regimen_or_basis_is_refused() -> None:
    with pytest.raises(DoseInputError, match="Unknown regimen 'ketalar_oral'; choose one of"):
        dosing.dose_mg(70, 1, "ketalar_oral")
    with pytest.raises(DoseInputError, match="dosed mg, so it cannot be used for a weight-based dose"):
        dosing.dose_mg(70, 1, "spravato_trd")
    with pytest.raises(DoseInputError, match="cannot be used for an infusion dose rate"):
        dosing.infusion_dose_rate_mg_per_h(70, 1, "ketalar_iv_induction")


def test_vials_and_durations_are_checked() -> None:
    with pytest.raises(DoseInputError, match=r"25 mg/mL is not a labelled vial strength; .* 10, 50, 100 mg/mL"):
        dosing.volume_ml(100, 25)
    with pytest.raises(DoseInputError, match=r"did you enter ug/mL\? 50000 ug/mL is 50 mg/mL"):
        dosing.volume_ml(100, 50000)
    with pytest.raises(DoseInputError, match=r"The dose \(dose_mg\) must be more than 0 mg"):
        dosing.volume_ml(-5, 10)
    with pytest.raises(DoseInputError, match=r"A duration of 40 h is above .* did you enter minutes\?"):
        dosing.infusion_rate_ml_per_h(35, 40, 10)
    with pytest.raises(DoseInputError, match=r"The duration \(duration_h\) must be more than 0 h"):
        dosing.infusion_rate_ml_per_h(35, 0, 10)


def test_the_microgram_hint_only_fits_a_number_that_would_be_micrograms() -> None:
    # 1.2 mg/kg is just above the research maximum; as micrograms it would be 0.0012 mg/kg, far below the range
    with pytest.raises(DoseInputError) as error:
        dosing.dose_mg(70, 1.2, "antidepressant_research_iv")
    assert "micrograms" not in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # the 40-minute research infusion as a 2-minute push, a bolus, or a 24-hour infusion
        ({"regimen_id": "antidepressant_research_iv", "duration_min": 2}, r"2 min is too fast .* at least 40 min \[fava2020; berman2000\]"),
        ({"regimen_id": "antidepressant_research_iv", "duration_min": 0}, r"not given as a bolus: it is an infusion on a pump over 40 min"),
        ({"regimen_id": "antidepressant_research_iv", "duration_min": 1440}, r"1440 min is longer than .* allows"),
        # an adult regimen for a neonate
        ({"regimen_id": "antidepressant_research_iv", "age_y": 0}, r"is for adults \(18 years and over\) .*an age of 0 years is outside it"),
        # Ketalar IV must be injected over 60 seconds
        ({"regimen_id": "ketalar_iv_induction", "per_kg": 2, "duration_min": 0}, r"not given as a bolus: .*over at least 60 seconds \[ketalar_pi\]"),
        ({"regimen_id": "ketalar_iv_induction", "per_kg": 2, "duration_min": 0.5}, r"0.5 min is too fast .*at least 60 seconds"),
        ({"regimen_id": "ketalar_iv_induction_slow", "per_kg": 2, "duration_min": 2}, r"at least 4 min \[ketalar_pi_summary\]"),
        ({"regimen_id": "ketalar_im_induction", "per_kg": 10, "duration_min": 40}, r"intramuscular injection, which has no infusion time"),
    ],
)
def test_the_tool_refuses_what_the_source_does_not_allow(kwargs, message) -> None:
    kwargs = dict(kwargs)  # the parameter is shared between runs: do not mutate it
    per_kg = kwargs.pop("per_kg", 0.5)
    regimen_id = kwargs.pop("regimen_id")
    with pytest.raises(DoseInputError, match=message):
        dosing.calculate_dose(3 if "age_y" in kwargs else 70, per_kg, regimen_id, 10, **kwargs)


def test_every_regimen_says_how_it_is_given_with_a_source() -> None:
    for plan in dosing.regimens():
        assert plan.delivery in ("push", "pump", "im_injection", "nasal_device")
        if plan.delivery == "pump":
            assert plan.infusion_concentration_mg_per_ml and plan.dilution_source_id
        assert plan.administration


def test_every_per_kg_regimen_accepts_its_own_limits() -> None:
    """The edges of each labelled range are inside it (no off-by-one refusals)."""
    for plan in dosing.regimens("per_kg"):
        for per_kg in filter(None, (plan.dose_low, plan.dose_high, plan.typical_dose)):
            assert dosing.dose_mg(70, per_kg, plan) == pytest.approx(70 * per_kg)


@given(
    weight=st.floats(3, 250),
    per_kg_fraction=st.fractions(Fraction(0), Fraction(1)),
    vial=st.sampled_from([10.0, 50.0, 100.0]),
)
def test_dose_and_volume_are_consistent(weight, per_kg_fraction, vial) -> None:
    plan = dosing.regimen("ketalar_iv_induction")
    per_kg = plan.dose_low + float(per_kg_fraction) * (plan.dose_high - plan.dose_low)
    calc = dosing.calculate_dose(weight, per_kg, plan, vial)
    assert calc.dose_mg == pytest.approx(weight * per_kg)
    assert calc.volume_ml * vial == pytest.approx(calc.dose_mg)


def test_ranges_come_from_the_table() -> None:
    row = load_table("labelled_doses").row("ketalar_im_induction")
    plan = dosing.regimen("ketalar_im_induction")
    assert (plan.dose_low, plan.dose_high, plan.source_id) == (row["dose_low"], row["dose_high"], row["source_id"])
