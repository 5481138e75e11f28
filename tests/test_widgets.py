"""The widgets, driven as a learner drives them: set values, read what they show."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from ketamine_course import pk
from ketamine_course.data import load_table
from ketamine_course.widgets import (
    DecayExplorer,
    DoseCalculator,
    ExposureTimeline,
    OccupancyExplorer,
    PopulationExplorer,
    format_number,
)

# How fast a plot update (under 25 ms in the kernel) is measured by ./course bench (benchmarks/run.py), never asserted here:
# wall-clock limits in unit tests fail on a busy machine.


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&times;", "x").replace("&#x27;", "'")


@pytest.fixture
def calculator() -> DoseCalculator:
    return DoseCalculator()


def test_dose_calculator_starts_on_the_research_infusion(calculator) -> None:
    shown = _text(calculator.result.value)
    assert "Dose: 35 mg" in shown and "Volume: 3.5 mL" in shown
    assert "Pump rate: 52.5 mL/h over 40 min, diluted to 1 mg/mL (35 mL in all) [ketalar_pi]" in shown
    assert "[fava2020; berman2000]" in shown
    assert "infusion pump over 40 min" in _text(calculator.how_given.value)
    assert "teaching only" in calculator.widget.children[0].value.lower()


def test_moving_the_weight_slider_updates_dose_volume_and_rate(calculator) -> None:
    calculator.weight_slider.value = 82
    assert calculator.weight_text.value == 82
    calculator.weight_slider.value = 71.99999999999999  # what a browser's keyboard steps send for 72
    assert calculator.weight_text.value == 72
    calculator.weight_slider.value = 82
    shown = _text(calculator.result.value)
    assert "Dose: 41 mg" in shown and "Volume: 4.1 mL" in shown and "Pump rate: 61.5 mL/h" in shown


def test_a_typed_weight_keeps_its_decimals(calculator) -> None:
    calculator.weight_text.value = 70.5
    calculator.weight_slider.value = 71  # what the browser's slider sends back after snapping to its 1 kg step
    assert calculator.weight_text.value == 70.5
    assert "Dose: 35.25 mg" in _text(calculator.result.value)
    calculator.weight_slider.value = 75  # a real slider move still wins
    assert calculator.weight_text.value == 75


def test_every_documented_input_does_what_it_says(calculator) -> None:
    calculator.duration_text.value = 0  # "0 = bolus": refused for the 40-minute infusion, with the limit and its source
    shown = _text(calculator.result.value)
    assert "Pump rate" not in shown
    assert "not given as a bolus: it is an infusion on a pump over 40 min [fava2020; berman2000]" in shown
    calculator.duration_text.value = 1440
    assert "longer than" in _text(calculator.result.value)
    calculator.duration_text.value = 40
    calculator.age_text.value = 0
    assert "is for adults (18 years and over)" in _text(calculator.result.value)
    calculator.age_text.value = 40
    calculator.regimen_dropdown.value = "ketalar_iv_induction"
    shown = _text(calculator.result.value)
    assert "Inject over: 1 min" in shown and "Pump rate" not in shown and "840 mL/h" not in shown
    calculator.duration_text.value = 0
    assert "not given as a bolus" in _text(calculator.result.value)


def test_typing_a_weight_moves_the_slider_and_out_of_range_shows_the_limit(calculator) -> None:
    calculator.weight_text.value = 64
    assert calculator.weight_slider.value == 64
    assert "Dose: 32 mg" in _text(calculator.result.value)
    calculator.weight_text.value = 400
    shown = _text(calculator.result.value)
    assert "course-error" in calculator.result.value and "Traceback" not in shown
    assert "above the course's input limit of 250 kg [course_model]" in shown
    assert "400 lb is 181.4 kg" in shown
    assert calculator.weight_slider.value == 64, "the slider keeps the last valid weight"
    calculator.weight_text.value = -5
    assert "The weight (weight_kg) must be more than 0 kg; you gave -5 kg" in _text(calculator.result.value)


def test_dose_in_micrograms_and_wrong_vial_are_explained(calculator) -> None:
    calculator.per_kg_text.value = 500
    assert "did you enter micrograms? 500 ug/kg is 0.5 mg/kg" in _text(calculator.result.value)
    calculator.per_kg_text.value = 0.5
    calculator.regimen_dropdown.value = "ketalar_iv_induction"
    assert calculator.per_kg_text.value == 2.0 and calculator.duration_text.value == 1.0
    calculator.vial_dropdown.value = 100.0
    shown = _text(calculator.result.value)
    assert "Dose: 140 mg" in shown and "Volume: 1.4 mL" in shown
    assert "diluted with an equal volume" in shown


def test_every_regimen_in_the_dropdown_gives_a_result(calculator) -> None:
    for _label, regimen_id in calculator.regimen_dropdown.options:
        calculator.regimen_dropdown.value = regimen_id
        assert "Dose:" in _text(calculator.result.value), regimen_id


def test_decay_half_life_slider_moves_markers_and_curve() -> None:
    explorer = DecayExplorer()
    before = explorer.plot.image.value
    explorer.half_life_slider.value = 4.0
    assert explorer.plot.image.value != before, "the plot image is redrawn"
    x_markers, y_markers = explorer.markers.get_data()
    assert np.allclose(x_markers, 4.0 * np.arange(1, len(x_markers) + 1))
    c0 = explorer.curve.get_data()[1][0]
    assert np.allclose(y_markers, c0 * 0.5 ** np.arange(1, len(x_markers) + 1))
    explorer.time_slider.value = 8.0
    shown = _text(explorer.readout.value)
    assert "(2 half-lives): 25% remains" in shown
    explorer.time_slider.value = explorer.half_life_slider.value
    assert "(1 half-life): 50% remains" in _text(explorer.readout.value)
    expected = pk.concentration_iv_bolus_ng_per_ml(explorer.dose_slider.value, explorer.volume_slider.value, 4.0, [8.0])[0]
    assert f"C = {format_number(expected, 1)} ng/mL" in shown


def test_decay_defaults_come_from_the_course_model_and_log_scale_works() -> None:
    explorer = DecayExplorer()
    row = load_table("pk_models").row("course_default", "half_life")
    assert explorer.half_life_slider.value == row["value"]
    assert explorer.volume_slider.value == round(load_table("pk_models").row("course_default", "V")["value"] * pk.REFERENCE_WEIGHT_KG)
    explorer.scale_toggle.value = "log"
    assert explorer.plot.figure.ax.get_yscale() == "log"
    explorer.dose_slider.value = 400  # a larger dose rescales the axis
    assert explorer.plot.figure.ax.get_ylim()[1] >= explorer.curve.get_data()[1][0]


def test_occupancy_slider_reports_each_form() -> None:
    explorer = OccupancyExplorer()
    explorer.conc_slider.value = 71.3  # about the S-ketamine Ki (0.30 uM)
    values = explorer.occupancies()
    assert values["S-ketamine"] == pytest.approx(0.5, abs=0.01)
    assert values["R-ketamine"] < values["racemic"] < values["S-ketamine"]
    assert "S-ketamine 50%" in explorer.readout.value
    x, y = explorer.points["racemic"].get_data()
    assert x[0] == pytest.approx(71.3) and y[0] == pytest.approx(100 * values["racemic"])


@pytest.mark.parametrize("factory", [DoseCalculator, DecayExplorer, OccupancyExplorer, PopulationExplorer, ExposureTimeline])
def test_widgets_have_stable_classes_and_a_static_fallback(factory) -> None:
    explorer = factory()
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].strip()
    # the still picture says it is one, and what the live widget does
    assert f"Run this notebook in JupyterLab to {html.escape(explorer.interactive)}." in bundle["text/html"]
    assert len(explorer.interactive) > 40
    if explorer.plot is not None:
        assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="[^"]{10,}"', bundle["text/html"])
        assert "t-plot" in explorer.plot.image._dom_classes
        assert explorer.plot.caption in explorer.widget.children, "the live plot's text alternative is shown under it"
        assert html.escape(explorer.plot.figure.alt_text) in explorer.plot.caption.value
    assert any(c.startswith("t-") for c in explorer.widget._dom_classes)
