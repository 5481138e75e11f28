"""Interactive widgets for the lessons (ipywidgets 8 + matplotlib).

The pharmacology lives in :mod:`dosing`, :mod:`pk` and :mod:`receptor`; this
module only wires controls to those functions. Plots are drawn once and then
updated in place (new line data, one Agg redraw, one PNG), which keeps a
slider change to a few tens of milliseconds in the kernel.

Every control and output carries a stable CSS class (``t-...``) so browser
tests can find it, and every explorer displays with a static fallback (its
current figure, with alt text) for executed notebooks and HTML exports.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from . import dosing, pk, population, receptor
from .data import cite, load_table
from .plotting import BAND_COLOURS, OKABE_ITO, CourseFigure, course_figure, shade_concentration_bands

__all__ = [
    "DoseCalculator", "DecayExplorer", "OccupancyExplorer", "PopulationExplorer", "ExposureTimeline", "format_number",
]


def format_number(value: float, decimals: int = 2) -> str:
    """Round for display and drop trailing zeros: 35.0 -> '35', 5.25 -> '5.25', 0.333 -> '0.33'."""
    return f"{round(value, decimals):g}" if math.isfinite(value) else str(value)


def _count(value: float, singular: str, plural: str) -> str:
    """'1 half-life', '0.96 half-lives', '2 half-lives'."""
    shown = format_number(value)
    return f"{shown} {singular if shown == '1' else plural}"


def _error_html(message: str) -> str:
    return (
        '<div class="course-error" role="alert" style="border-left:4px solid #D55E00;padding:4px 8px;'
        f'background:#fdf0e8"><b>Not calculated.</b> {html.escape(message)}</div>'
    )


class _LivePlot:
    """A figure shown through an ``ipywidgets.Image``, redrawn in place.

    Artists that move are drawn "animated": a full redraw (needed only when
    the axes change) caches the static background, and an ordinary update
    restores that background, draws the moving artists and encodes one PNG.
    """

    def __init__(self, figure: CourseFigure, css_class: str, moving: list[Any]) -> None:
        self.figure = figure
        self.canvas = FigureCanvasAgg(figure.figure)
        self.moving = moving
        for artist in moving:
            artist.set_animated(True)
        self._background: Any = None
        self._png_info = PngInfo()
        self._png_info.add_text("Description", figure.alt_text)
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.image.add_class(css_class)
        self.image.add_class("t-plot")
        # ipywidgets' Image has no alt attribute (and a tooltip on it breaks the view in ipywidgets 8.1),
        # so the text alternative is a caption right under the plot.
        self.caption = w.HTML(f'<small class="t-plot-alt"><i>Figure: {html.escape(figure.alt_text)}</i></small>')

    @property
    def parts(self) -> tuple[w.Image, w.HTML]:
        """The plot and its caption, in the order an explorer lays them out."""
        return self.image, self.caption

    def refresh(self, full: bool = False) -> None:
        """Redraw: the whole figure if ``full`` (or first time), else only the moving artists."""
        if full or self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.figure.bbox)
        else:
            self.canvas.restore_region(self._background)
        for artist in self.moving:
            self.figure.figure.draw_artist(artist)
        width, height = self.canvas.get_width_height()
        frame = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        frame.convert("RGB").save(buffer, format="png", compress_level=1, pnginfo=self._png_info)
        self.image.value = buffer.getvalue()


def _nice_ceiling(value: float) -> float:
    """The next value of the 1-2-5 series at or above ``value`` (axis limits that change rarely)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover


class _Explorer:
    """Common display: the widget in a live front end, the figure and text in a static one."""

    widget: w.Widget
    plot: _LivePlot | None = None
    interactive: str = ""
    """What a learner can do with the live widget, completing 'Run this notebook in JupyterLab to ...'."""

    def _fallback_html(self) -> str:
        parts = []
        if self.plot is not None:
            data = base64.b64encode(self.plot.image.value).decode("ascii")
            alt = html.escape(self.plot.figure.alt_text, quote=True)
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{alt}" />')
        parts.append(self._summary_html())
        parts.append(
            f'<p class="course-static-note"><small><i>A still picture of an interactive widget. '
            f"Run this notebook in JupyterLab to {html.escape(self.interactive)}.</i></small></p>"
        )
        return "\n".join(parts)

    def _summary_html(self) -> str:
        return ""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle = dict(bundle)
        bundle["text/html"] = self._fallback_html()
        return bundle


def _observe(callback: Callable[[], None], *controls: w.ValueWidget) -> None:
    for control in controls:
        control.observe(lambda _change: callback(), names="value")


# --------------------------------------------------------------------------
# Dose per kg
# --------------------------------------------------------------------------


class DoseCalculator(_Explorer):
    """Weight x mg/kg -> dose (mg), volume (mL) and, for a pump regimen, pump rate (mL/h), checked against the source.

    Inputs outside what the source allows (dose range, how the dose is given,
    how long it takes, who it is for) show the limit and its source instead
    of a result. A typed weight keeps its decimals; the slider follows it.
    """

    interactive = (
        "choose the product, use and route, move the weight slider or type a weight, set the age, "
        "and change the dose, vial and infusion time: the dose, volume and pump rate update as you go"
    )

    def __init__(
        self,
        weight_kg: float = pk.REFERENCE_WEIGHT_KG,
        regimen_id: str = "antidepressant_research_iv",
        concentration_mg_per_ml: float = 10.0,
        age_y: float = 40.0,
    ) -> None:
        limits = load_table("constants")
        low, high = limits.row("min_weight_kg")["value"], limits.row("max_weight_kg")["value"]
        style = {"description_width": "11em"}
        wide = w.Layout(width="34em")
        self.weight_slider = w.FloatSlider(
            value=weight_kg, min=low, max=high, step=1.0, readout_format=".0f",
            description="Weight (kg)", style=style, layout=wide, continuous_update=True,
        )
        self.weight_text = w.FloatText(
            value=weight_kg, description="or type (kg)", style=style, layout=w.Layout(width="20em"),
        )
        self.age_text = w.FloatText(value=age_y, description="Age (years)", style=style, layout=w.Layout(width="20em"))
        plans = dosing.regimens("per_kg")
        self.regimen_dropdown = w.Dropdown(
            options=[(f"{p.description}: {p.range_text}", p.regimen_id) for p in plans],
            value=regimen_id, description="Product, use, route", style=style, layout=w.Layout(width="52em"),
        )
        self.per_kg_text = w.FloatText(description="Dose (mg/kg)", style=style, layout=w.Layout(width="20em"))
        vials = load_table("vials").where(form="vial")
        self.vial_dropdown = w.Dropdown(
            options=[
                (f"{format_number(v['concentration_mg_per_ml'])} mg/mL", float(v["concentration_mg_per_ml"]))
                for v in vials
            ],
            value=concentration_mg_per_ml, description="Vial", style=style, layout=w.Layout(width="20em"),
        )
        self.duration_text = w.FloatText(
            description="Over (min; 0 = bolus)", style=style, layout=w.Layout(width="20em"),
        )
        self.how_given = w.HTML()
        self.result = w.HTML()
        disclaimer = w.HTML(f"<small><i>{html.escape(dosing.DISCLAIMER)}</i></small>")
        for control, css in (
            (self.weight_slider, "t-weight"), (self.weight_text, "t-weight-text"), (self.age_text, "t-age"),
            (self.regimen_dropdown, "t-regimen"), (self.per_kg_text, "t-per-kg"), (self.vial_dropdown, "t-vial"),
            (self.duration_text, "t-duration"), (self.how_given, "t-how-given"), (self.result, "t-dose-result"),
            (disclaimer, "t-disclaimer"),
        ):
            control.add_class(css)
        self.widget = w.VBox(
            [
                disclaimer, self.regimen_dropdown, self.how_given, self.weight_slider, self.weight_text, self.age_text,
                self.per_kg_text, self.vial_dropdown, self.duration_text, self.result,
            ]
        )
        self.widget.add_class("t-dose-calculator")
        self._syncing = False
        self.weight_slider.observe(self._slider_moved, names="value")
        self.weight_text.observe(self._text_typed, names="value")
        self.regimen_dropdown.observe(lambda _c: self._load_regimen(), names="value")
        _observe(self.update, self.per_kg_text, self.vial_dropdown, self.duration_text, self.age_text)
        self._load_regimen()

    # The text box holds the weight; the slider shows it as closely as its 1 kg step allows.
    def _slider_moved(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        new = round(change["new"], 9)  # a browser's slider steps in binary floating point (71.99999999999999 for 72)
        if abs(new - self.weight_text.value) <= self.weight_slider.step / 2 + 1e-9:
            return  # the slider snapping a typed weight to its step: keep what was typed (70.5 stays 70.5)
        self._syncing = True
        self.weight_text.value = new
        self._syncing = False
        self.update()

    def _text_typed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        value = change["new"]
        if self.weight_slider.min <= value <= self.weight_slider.max:
            self._syncing = True
            self.weight_slider.value = value
            self._syncing = False
        self.update()

    def _load_regimen(self) -> None:
        plan = dosing.regimen(self.regimen_dropdown.value)
        per_kg = plan.typical_dose or plan.dose_low or plan.dose_high
        with self.widget.hold_trait_notifications():
            self._syncing = True
            self.per_kg_text.value = per_kg
            # what the source says: the pump's duration, the shortest injection time, or 0 for an IM injection
            default = dosing.calculate_dose(pk.REFERENCE_WEIGHT_KG, per_kg, plan, 10.0).duration_min
            self.duration_text.value = default or 0.0
            self._syncing = False
        who = f"; for {plan.who_text}" if plan.who_text else ""
        self.how_given.value = (
            f"<small><b>How it is given:</b> {html.escape(plan.administration)} "
            f"({html.escape(plan.duration_text)}{html.escape(who)}) "
            f"{cite(plan.source_id)}</small>"
        )
        self.update()

    @property
    def weight_kg(self) -> float:
        return self.weight_text.value

    def calculation(self) -> dosing.DoseCalculation:
        """The current inputs run through :func:`dosing.calculate_dose` (raises DoseInputError).

        The duration box means what it says: 0 is a bolus, any other number is minutes.
        """
        return dosing.calculate_dose(
            self.weight_kg, self.per_kg_text.value, self.regimen_dropdown.value, self.vial_dropdown.value,
            duration_min=self.duration_text.value, age_y=self.age_text.value,
        )

    def update(self) -> None:
        if self._syncing:
            return
        try:
            calc = self.calculation()
        except dosing.DoseInputError as error:
            self.result.value = _error_html(str(error))
            return
        self.result.value = self._result_html(calc)

    @staticmethod
    def _result_html(calc: dosing.DoseCalculation) -> str:
        plan = calc.regimen
        lines = [
            f'<span class="t-dose-mg"><b>Dose:</b> {format_number(calc.dose_mg)} mg</span> '
            f"({format_number(calc.dose_mg_per_kg)} mg/kg &times; {format_number(calc.weight_kg)} kg)",
            f'<span class="t-volume-ml"><b>Volume:</b> {format_number(calc.volume_ml)} mL</span> '
            f"of {format_number(calc.concentration_mg_per_ml)} mg/mL",
        ]
        if calc.rate_ml_per_h is not None:
            lines.append(
                f'<span class="t-rate"><b>Pump rate:</b> {format_number(calc.rate_ml_per_h)} mL/h</span> '
                f"over {format_number(calc.duration_min or 0)} min, diluted to "
                f"{format_number(calc.infusion_concentration_mg_per_ml or 0)} mg/mL "
                f"({format_number(calc.infusion_volume_ml or 0)} mL in all) "
                f"{cite(plan.dilution_source_id or plan.source_id)}"
            )
        elif calc.duration_min:
            lines.append(
                f'<span class="t-inject"><b>Inject over:</b> {format_number(calc.duration_min)} min or longer</span> '
                "(by hand; no pump rate)"
            )
        lines.append(
            f"<small>Range for {html.escape(plan.description)}: {plan.range_text} {cite(plan.source_id)}</small>"
        )
        lines += [f"<small>{html.escape(note)}</small>" for note in calc.notes]
        return "<br>".join(lines)

    def _summary_html(self) -> str:
        return self.result.value


# --------------------------------------------------------------------------
# Half-life decay
# --------------------------------------------------------------------------


class DecayExplorer(_Explorer):
    """First-order decline after an IV bolus: C(t) = C0 (1/2)^(t / t_half), with markers at each half-life."""

    plot: _LivePlot

    interactive = (
        "move the dose, half-life, volume and time sliders and switch the y axis between linear and log: "
        "the curve and the readout update as you go"
    )

    WINDOW_H = 24.0

    def __init__(self) -> None:
        default = pk.compartment_model("course_default")
        half_life_default = math.log(2) / default.k10_per_h
        style = {"description_width": "10em"}
        wide = w.Layout(width="34em")
        self.dose_slider = w.FloatSlider(
            value=35.0, min=1, max=500, step=1, readout_format=".0f",
            description="IV dose (mg)", style=style, layout=wide,
        )
        self.half_life_slider = w.FloatSlider(
            value=round(half_life_default, 1), min=0.5, max=12, step=0.1, readout_format=".1f",
            description="Half-life (h)", style=style, layout=wide
        )
        self.volume_slider = w.FloatSlider(
            value=round(default.central_volume_l), min=20, max=800, step=1, readout_format=".0f",
            description="Volume (L)", style=style, layout=wide
        )
        self.time_slider = w.FloatSlider(
            value=round(half_life_default, 1), min=0, max=self.WINDOW_H, step=0.1, readout_format=".1f",
            description="Time (h)", style=style, layout=wide,
        )
        self.scale_toggle = w.ToggleButtons(
            options=["linear", "log"], value="linear", description="y axis", style=style,
        )
        self.readout = w.HTML()
        for control, css in (
            (self.dose_slider, "t-decay-dose"), (self.half_life_slider, "t-half-life"),
            (self.volume_slider, "t-volume"), (self.time_slider, "t-time"), (self.scale_toggle, "t-scale"),
            (self.readout, "t-fraction"),
        ):
            control.add_class(css)
        self.time_h = np.linspace(0, self.WINDOW_H, 481)
        fig = course_figure(
            "Ketamine after an IV bolus: one-compartment model",
            "Time after dose (h)",
            "Plasma concentration (ng/mL)",
            "A falling exponential curve; dots mark each half-life, where the concentration has halved again.",
            figsize=(7.0, 3.6),
        )
        ax = fig.ax
        (self.curve,) = ax.plot([], [], color=OKABE_ITO[0], linewidth=2, label="concentration")
        (self.markers,) = ax.plot([], [], "o", color=OKABE_ITO[1], label="each half-life")
        (self.cursor,) = ax.plot([], [], "s", color=OKABE_ITO[5], markersize=8, label="chosen time")
        ax.set_xlim(0, self.WINDOW_H)
        ax.legend(loc="upper right")
        self.plot = _LivePlot(fig, "t-decay-plot", [self.curve, self.markers, self.cursor])
        self._axes_state: tuple[str, float] | None = None
        self.widget = w.VBox(
            [
                self.dose_slider, self.half_life_slider, self.volume_slider, self.time_slider, self.scale_toggle,
                self.readout, *self.plot.parts,
            ]
        )
        self.widget.add_class("t-decay")
        _observe(
            self.update, self.dose_slider, self.half_life_slider, self.volume_slider, self.time_slider,
            self.scale_toggle,
        )
        self.update()

    def update(self) -> None:
        dose, half_life, volume = self.dose_slider.value, self.half_life_slider.value, self.volume_slider.value
        conc = pk.concentration_iv_bolus_ng_per_ml(dose, volume, half_life, self.time_h)
        c0 = conc[0]
        n = np.arange(1, int(self.WINDOW_H // half_life) + 1)
        t_mark = n * half_life
        self.curve.set_data(self.time_h, conc)
        self.markers.set_data(t_mark, c0 * pk.fraction_remaining(n))
        t_now = self.time_slider.value
        (c_now,) = pk.concentration_iv_bolus_ng_per_ml(dose, volume, half_life, [t_now])
        self.cursor.set_data([t_now], [c_now])
        axes_state = (self.scale_toggle.value, _nice_ceiling(c0 * 1.05))
        if axes_state != self._axes_state:  # rescale only when the scale or the top of the axis must change
            scale, top = axes_state
            ax = self.plot.figure.ax
            ax.set_yscale(scale)
            ax.set_ylim((top * 2.0**-12, top) if scale == "log" else (0, top))
            self._axes_state = axes_state
            self.plot.refresh(full=True)
        else:
            self.plot.refresh()
        remaining = pk.fraction_remaining(t_now / half_life)
        self.readout.value = (
            f'<span class="t-fraction-text">After {format_number(t_now, 1)} h '
            f"({_count(t_now / half_life, 'half-life', 'half-lives')}): "
            f"{format_number(100 * float(remaining), 1)}% remains, "
            f"C = {format_number(float(c_now), 1)} ng/mL</span> "
            f"<small>(C0 = dose / volume = {format_number(c0, 1)} ng/mL)</small>"
        )

    def _summary_html(self) -> str:
        return self.readout.value


# --------------------------------------------------------------------------
# NMDA receptor occupancy
# --------------------------------------------------------------------------


class OccupancyExplorer(_Explorer):
    """NMDA occupancy against plasma concentration for racemic ketamine and its enantiomers."""

    plot: _LivePlot

    interactive = "move the plasma concentration slider: the points on the curves and the occupancies update as you go"

    def __init__(self, conc_ng_per_ml: float = 185.0) -> None:
        self.conc_slider = w.FloatLogSlider(
            value=conc_ng_per_ml, base=10, min=0, max=4, step=0.01, description="Plasma (ng/mL)",
            style={"description_width": "10em"}, layout=w.Layout(width="34em"), readout_format=".0f",
        )
        self.conc_slider.add_class("t-conc")
        self.readout = w.HTML()
        self.readout.add_class("t-occupancy")
        conc = np.logspace(0, 4, 400)
        fig = course_figure(
            "NMDA receptor occupancy at equilibrium",
            "Total plasma concentration (ng/mL, log scale)",
            "Receptors occupied (%)",
            (
                "Three S-shaped curves: S-ketamine reaches any occupancy at the lowest concentration, "
                "R-ketamine at the highest, racemic between."
            ),
            figsize=(7.0, 3.6),
        )
        ax = fig.ax
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        for band_id in ("analgesia", "dissociation", "anaesthesia"):
            band = load_table("concentration_bands").row(band_id)
            ax.axvspan(band["low_ng_per_ml"], band["high_ng_per_ml"], color=BAND_COLOURS[band_id], alpha=0.12,
                       linewidth=0, label=f"{band['label']} {cite(band['source_id'])}")
        self.points = {}
        for colour, form in zip(OKABE_ITO, receptor.FORMS, strict=False):
            ax.plot(
                conc, 100 * receptor.occupancy_from_ng_per_ml(conc, form), color=colour,
                label=f"{form} {cite('ebert1997')}",
            )
            (self.points[form],) = ax.plot([], [], "o", color=colour, markersize=7)
        self.cursor = ax.axvline(conc_ng_per_ml, color="#000000", linestyle=":", linewidth=1)
        ax.legend(loc="upper left", fontsize=8)
        self.plot = _LivePlot(fig, "t-occupancy-plot", [*self.points.values(), self.cursor])
        self.widget = w.VBox([self.conc_slider, self.readout, *self.plot.parts])
        self.widget.add_class("t-occupancy-explorer")
        _observe(self.update, self.conc_slider)
        self.update()

    def occupancies(self) -> dict[str, float]:
        """Occupancy (fraction) of each form at the slider's concentration."""
        return {form: float(receptor.occupancy_from_ng_per_ml(self.conc_slider.value, form)) for form in receptor.FORMS}

    def update(self) -> None:
        conc = self.conc_slider.value
        values = self.occupancies()
        for form, value in values.items():
            self.points[form].set_data([conc], [100 * value])
        self.cursor.set_xdata([conc, conc])
        self.plot.refresh()
        items = ", ".join(f"{form} {format_number(100 * v, 1)}%" for form, v in values.items())
        self.readout.value = (
            f"At {format_number(conc, 0)} ng/mL "
            f"({format_number(float(receptor.conc_um_from_ng_per_ml(conc)), 2)} &micro;M): {items}"
        )

    def _summary_html(self) -> str:
        return self.readout.value


# --------------------------------------------------------------------------
# A virtual population and the exposure timeline
# --------------------------------------------------------------------------


def iv_regimens() -> list[dosing.Regimen]:
    """The IV mg/kg regimens of ``data/labelled_doses.csv`` (the choices of the population and timeline widgets)."""
    return [plan for plan in dosing.regimens("per_kg") if plan.route == "iv"]


def regimen_dose(plan: dosing.Regimen) -> tuple[float, float]:
    """A regimen's representative dose (mg/kg: typical, else the low end, else the high end) and duration (min;
    0 = push).

    A push given over a minute or so is modelled as a bolus; a pump regimen runs for its stated time.
    """
    per_kg = plan.typical_dose or plan.dose_low or plan.dose_high
    duration = plan.duration_min if plan.delivery == "pump" and plan.duration_min else 0.0
    return float(per_kg), float(duration)


def _regimen_controls(regimen_id: str, style: dict[str, str]) -> tuple[w.Dropdown, w.FloatSlider, w.Dropdown]:
    plans = iv_regimens()
    regimen = w.Dropdown(
        options=[(f"{p.description}: {p.range_text}", p.regimen_id) for p in plans],
        value=regimen_id, description="Regimen", style=style, layout=w.Layout(width="52em"),
    )
    dose = w.FloatSlider(
        value=0.5, min=0.05, max=4.5, step=0.05, readout_format=".2f",
        description="IV dose (mg/kg)", style=style, layout=w.Layout(width="34em"),
    )
    duration = w.Dropdown(
        options=[("bolus", 0.0), ("over 40 min", 40.0)], value=40.0,
        description="Given", style=style, layout=w.Layout(width="20em"),
    )
    return regimen, dose, duration


def _duration_options(duration_min: float) -> list[tuple[str, float]]:
    options = [("bolus", 0.0)]
    if duration_min:
        options.append((f"over {format_number(duration_min)} min", duration_min))
    return options


class _RegimenExplorer(_Explorer):
    """An explorer driven by an IV regimen of ``data/labelled_doses.csv``: choosing one loads its dose and duration."""

    regimen_dropdown: w.Dropdown
    dose_slider: w.FloatSlider
    duration_dropdown: w.Dropdown
    _loading = False
    """True while a regimen's dose and duration are being set, so that :meth:`update` runs once, afterwards."""

    def update(self) -> None:
        raise NotImplementedError

    def _start(self, *controls: w.ValueWidget) -> None:
        """Redraw when the regimen, dose, duration or ``controls`` change; show the chosen regimen now."""
        self.regimen_dropdown.observe(lambda _change: self._load_regimen(), names="value")
        _observe(self.update, self.dose_slider, self.duration_dropdown, *controls)
        self._load_regimen()

    def _load_regimen(self) -> None:
        per_kg, duration = regimen_dose(dosing.regimen(self.regimen_dropdown.value))
        self._loading = True
        self.duration_dropdown.options = _duration_options(duration)
        self.duration_dropdown.value = duration
        self.dose_slider.value = per_kg
        self._loading = False
        self.update()


class PopulationExplorer(_RegimenExplorer):
    """The same mg/kg dose in many simulated people: every curve, the median, a 90% band and where the peaks fall."""

    plot: _LivePlot

    interactive = (
        "choose the regimen, move the dose and the number of people: "
        "the curves, the median, the 90% band and the shares of peaks in each band update as you go"
    )

    WINDOW_H = 6.0
    MAX_PEOPLE = 1000

    def __init__(
        self, n_people: int = 1000, regimen_id: str = "antidepressant_research_iv", seed: int = population.DEFAULT_SEED
    ) -> None:
        style = {"description_width": "10em"}
        self.seed = seed
        self.people = population.sample_population(self.MAX_PEOPLE, seed=seed)
        self.spread = population.variability()
        self.regimen_dropdown, self.dose_slider, self.duration_dropdown = _regimen_controls(regimen_id, style)
        self.people_slider = w.IntSlider(
            value=n_people, min=10, max=self.MAX_PEOPLE, step=10,
            description="People", style=style, layout=w.Layout(width="34em"),
        )
        self.readout = w.HTML()
        for control, css in (
            (self.regimen_dropdown, "t-pop-regimen"), (self.dose_slider, "t-pop-dose"),
            (self.duration_dropdown, "t-pop-duration"), (self.people_slider, "t-people"),
            (self.readout, "t-pop-shares"),
        ):
            control.add_class(css)
        # 4 min steps: the end of a 40 min infusion is a sample; drawing cost grows with the points
        self.time_h = np.linspace(0, self.WINDOW_H, 91)
        source = cite(self.spread.source_id)
        fig = course_figure(
            "The same mg/kg dose in a simulated population",
            "Time after the start of the dose (h)",
            "Plasma concentration (ng/mL)",
            "Many thin grey curves, one per simulated person, fan out around a thick median curve "
            "inside a shaded 90% band; "
            "the concentration bands are shaded behind them.",
            figsize=(7.0, 3.8),
        )
        ax = fig.ax
        shade_concentration_bands(ax, list(population.RANGE_BANDS), alpha=0.12)
        self.curves = LineCollection([], colors="#555555", linewidths=0.5, alpha=0.08)
        ax.add_collection(self.curves)
        self.band = ax.fill_between(
            self.time_h, self.time_h * 0, self.time_h * 0, color=OKABE_ITO[0], alpha=0.25, linewidth=0,
            label="90% of people (5th-95th percentile)",
        )
        (self.median,) = ax.plot([], [], color=OKABE_ITO[0], linewidth=2.2, label="median person")
        ax.set_xlim(0, self.WINDOW_H)
        ax.legend(loc="upper right", fontsize=7)
        self.caveat = w.HTML(
            "<small>Each person's central volume and clearance vary log-normally "
            f"(CV about {format_number(self.spread.cv_v1_percent, 0)}% and "
            f"{format_number(self.spread.cv_cl_percent, 0)}%) as estimated for IV {html.escape(self.spread.analyte)} "
            f"in healthy adults {source}, "
            f"applied to the course's two-compartment model of racemic ketamine {cite('clements1981')}: "
            "an assumption, since no variability "
            "of that model was found. Seeded: the same people on every run. Not for dosing anyone.</small>"
        )
        self.plot = _LivePlot(fig, "t-pop-plot", [self.curves, self.band, self.median])
        self._top: float | None = None
        self.widget = w.VBox([
            self.regimen_dropdown, self.dose_slider, self.duration_dropdown, self.people_slider, self.readout,
            *self.plot.parts, self.caveat,
        ])
        self.widget.add_class("t-population")
        self._start(self.people_slider)

    def simulate(self) -> tuple[Any, np.ndarray]:
        """The first n people of the seeded population and their curves (people x times)."""
        n = self.people_slider.value
        people = population.Population(
            self.people.weight_kg[:n], self.people.central_volume_l[:n], self.people.clearance_l_per_h[:n],
            self.people.intercompartmental_l_per_h, self.people.peripheral_volume_l, self.seed,
        )
        conc = population.concentrations_ng_per_ml(
            people, self.dose_slider.value, self.duration_dropdown.value / 60, self.time_h
        )
        return people, conc

    def update(self) -> None:
        if self._loading:
            return
        people, conc = self.simulate()
        low, mid, high = population.percentiles_ng_per_ml(conc)
        segments: Any = np.empty((conc.shape[0], conc.shape[1], 2))  # one (time, conc) polyline per person
        segments[:, :, 0] = self.time_h
        segments[:, :, 1] = conc
        self.curves.set_segments(segments)
        # a few people stay visible, a crowd stays readable
        self.curves.set_alpha(min(0.5, 2.5 / math.sqrt(len(people))))
        self.band.set_data(self.time_h, low, high)
        self.median.set_data(self.time_h, mid)
        top = _nice_ceiling(float(np.percentile(conc.max(axis=1), 99)) * 1.1)
        if top != self._top:
            self.plot.figure.ax.set_ylim(0, top)
            self._top = top
            self.plot.refresh(full=True)
        else:
            self.plot.refresh()
        peaks = population.peak_ng_per_ml(people, self.dose_slider.value, self.duration_dropdown.value / 60)
        shares = population.band_shares(peaks)
        bands = load_table("concentration_bands")
        items = "; ".join(
            f"{html.escape(bands.row(b)['label'])} "
            f"({format_number(bands.row(b)['low_ng_per_ml'])}-{format_number(bands.row(b)['high_ng_per_ml'])} ng/mL): "
            f"{format_number(100 * shares[b], 1)}%"
            for b in population.RANGE_BANDS
        )
        p5, p50, p95 = np.percentile(peaks, (5, 50, 95))
        self.readout.value = (
            f'<span class="t-pop-peak">{len(people)} people: median peak {format_number(p50, 0)} ng/mL, '
            f"90% of peaks between {format_number(p5, 0)} and {format_number(p95, 0)} ng/mL.</span><br>"
            f'<span class="t-pop-band-shares">Peak inside each band: {items}; '
            f'in none of them: {format_number(100 * shares["none"], 1)}% '
            f"{cite('zanos2018')}</span>"
        )

    def _summary_html(self) -> str:
        return self.readout.value + "<br>" + self.caveat.value


class ExposureTimeline(_RegimenExplorer):
    """Plasma concentration, NMDA occupancy and the concentration bands of one regimen on one time axis."""

    plot: _LivePlot

    interactive = (
        "choose the regimen, move the dose and the occupancy threshold: the plasma curve, the occupancy curves "
        "and the time occupancy falls below the threshold update as you go"
    )

    WINDOW_H = 8.0

    def __init__(self, regimen_id: str = "antidepressant_research_iv", threshold_percent: float = 20.0) -> None:
        style = {"description_width": "10em"}
        self.regimen_dropdown, self.dose_slider, self.duration_dropdown = _regimen_controls(regimen_id, style)
        self.threshold_slider = w.FloatSlider(
            value=threshold_percent, min=5, max=90, step=1, readout_format=".0f", description="Occupancy threshold (%)",
            style={"description_width": "13em"}, layout=w.Layout(width="34em"),
        )
        self.readout = w.HTML()
        for control, css in (
            (self.regimen_dropdown, "t-tl-regimen"), (self.dose_slider, "t-tl-dose"),
            (self.duration_dropdown, "t-tl-duration"), (self.threshold_slider, "t-threshold"),
            (self.readout, "t-timeline-readout"),
        ):
            control.add_class(css)
        self.model = pk.compartment_model("clements_2cmt")
        self.time_h = np.linspace(0, self.WINDOW_H, 481)
        fig = course_figure(
            "One regimen, one time axis: plasma, NMDA occupancy, effect bands",
            "Time after the start of the dose (h)",
            "Plasma (ng/mL)",
            "Two panels sharing a time axis: above, the plasma concentration rises and falls "
            "through shaded concentration bands; "
            "below, the predicted NMDA receptor occupancy of racemic ketamine and of S-ketamine "
            "at the same concentration, with a dashed threshold line.",
            figsize=(7.0, 5.2),
        )
        figure = fig.figure
        top_ax = fig.ax
        grid = figure.add_gridspec(2, 1, height_ratios=(1.2, 1))
        top_ax.set_subplotspec(grid[0])
        top_ax.set_xlabel("")
        bottom = figure.add_subplot(grid[1], sharex=top_ax)
        bottom.set_xlabel("Time after the start of the dose (h)")
        bottom.set_ylabel("NMDA occupied (%)")
        bottom.grid(True, alpha=0.3)
        for side in ("top", "right"):
            bottom.spines[side].set_visible(False)
        bottom.set_ylim(0, 100)
        top_ax.set_yscale("log")
        top_ax.set_ylim(10, 5000)
        top_ax.set_xlim(0, self.WINDOW_H)
        shade_concentration_bands(top_ax, alpha=0.12)
        (self.plasma,) = top_ax.plot(
            [], [], color=OKABE_ITO[7], linewidth=2,
            label=f"plasma, typical {pk.REFERENCE_WEIGHT_KG:g} kg adult {cite('clements1981')}",
        )
        top_ax.legend(loc="upper right", fontsize=6.5, ncol=2)
        (self.occ_racemic,) = bottom.plot(
            [], [], color=OKABE_ITO[0], linewidth=2, label=f"racemic ketamine (S and R Ki) {cite('ebert1997')}",
        )
        (self.occ_s,) = bottom.plot(
            [], [], color=OKABE_ITO[1], linewidth=1.5, linestyle="-.", label="S-ketamine at the same concentration",
        )
        self.threshold_line = bottom.axhline(
            threshold_percent, color=OKABE_ITO[5], linestyle="--", linewidth=1, label="threshold",
        )
        (self.crossing,) = bottom.plot([], [], "v", color=OKABE_ITO[5], markersize=8)
        bottom.legend(loc="upper right", fontsize=7)
        self.caveat = w.HTML(
            "<small>Hypothesis-level: occupancy is computed at equilibrium from rat-brain binding constants "
            f"{cite('ebert1997')} with total (not unbound) plasma concentration; "
            "ketamine is a use-dependent channel blocker, "
            "the brain lags plasma, and whether occupancy explains any effect, let alone the antidepressant one, "
            "is not established. "
            "The bands come from different studies and overlap. Not for dosing anyone.</small>"
        )
        self.plot = _LivePlot(
            fig, "t-timeline-plot", [self.plasma, self.occ_racemic, self.occ_s, self.threshold_line, self.crossing]
        )
        self.widget = w.VBox([
            self.regimen_dropdown, self.dose_slider, self.duration_dropdown, self.threshold_slider, self.readout,
            *self.plot.parts, self.caveat,
        ])
        self.widget.add_class("t-timeline")
        self._start(self.threshold_slider)

    def curves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Plasma (ng/mL) and occupancy fractions (racemic, S-ketamine) over ``time_h`` for the current inputs."""
        dose = pk.Dose(0.0, self.dose_slider.value * self.model.weight_kg, duration_h=self.duration_dropdown.value / 60)
        plasma = pk.simulate(self.model, [dose], self.time_h).conc_ng_per_ml
        return (
            plasma, receptor.occupancy_from_ng_per_ml(plasma, "racemic"),
            receptor.occupancy_from_ng_per_ml(plasma, "S-ketamine"),
        )

    def update(self) -> None:
        if self._loading:
            return
        plasma, racemic, s_form = self.curves()
        threshold = self.threshold_slider.value / 100
        self.plasma.set_data(self.time_h, np.clip(plasma, 1e-3, None))
        self.occ_racemic.set_data(self.time_h, 100 * racemic)
        self.occ_s.set_data(self.time_h, 100 * s_form)
        self.threshold_line.set_ydata([100 * threshold, 100 * threshold])
        below = receptor.time_falls_below_h(self.time_h, racemic, threshold)
        self.crossing.set_data(([below], [100 * threshold]) if below is not None else ([], []))
        self.plot.refresh()
        peak = int(np.argmax(plasma))
        if below is None:
            when = (
                f"does not reach {format_number(100 * threshold, 0)}%" if racemic.max() < threshold
                else (
                    f"stays above {format_number(100 * threshold, 0)}% "
                    f"for the {format_number(self.WINDOW_H, 0)} h shown"
                )
            )
        else:
            when = f"falls below {format_number(100 * threshold, 0)}% at {format_number(below, 2)} h"
        self.readout.value = (
            f'<span class="t-tl-peak">Peak {format_number(float(plasma[peak]), 0)} ng/mL '
            f"at {format_number(float(self.time_h[peak]), 2)} h; "
            f"racemic occupancy at the peak {format_number(100 * float(racemic[peak]), 1)}%.</span> "
            f'<span class="t-tl-below">Racemic occupancy {when}.</span>'
        )

    def _summary_html(self) -> str:
        return self.readout.value + "<br>" + self.caveat.value
