"""One plotting style for the course: labelled axes with units, a colour-blind-safe palette,
concentration bands labelled with their source, and alt text on every figure.

Figures are built with :class:`matplotlib.figure.Figure` directly (not pyplot),
so nothing is drawn twice and importing this module stays cheap. A
:class:`CourseFigure` displays in Jupyter as an ``<img>`` with its alt text,
and falls back to PNG where HTML is not shown.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .data import cite, load_table

__all__ = ["OKABE_ITO", "BAND_COLOURS", "CourseFigure", "course_figure", "shade_concentration_bands"]

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
"""Okabe & Ito's palette, distinguishable with the common forms of colour-vision deficiency."""

BAND_COLOURS = {
    "analgesia": "#009E73",
    "dissociation": "#CC79A7",
    "antidepressant_peak": "#0072B2",
    "awakening": "#E69F00",
    "anaesthesia": "#D55E00",
}

_RC = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
}


@dataclass
class CourseFigure:
    """A figure with its alt text; displays as an accessible image in Jupyter."""

    figure: Figure
    alt_text: str

    def __post_init__(self) -> None:
        if not self.alt_text.strip():
            raise ValueError("every course figure needs alt text")
        if "\n" in self.alt_text:
            raise ValueError("alt text is one line")

    @property
    def ax(self) -> Axes:
        return self.figure.axes[0]

    def png_bytes(self, dpi: int = 100) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Description": self.alt_text})
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png_bytes()

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png_bytes()).decode("ascii")
        alt = html.escape(self.alt_text, quote=True)
        return f'<img src="data:image/png;base64,{data}" alt="{alt}" title="{alt}" />'


def course_figure(
    title: str,
    xlabel: str,
    ylabel: str,
    alt_text: str,
    figsize: tuple[float, float] = (7.0, 4.0),
    categorical: str = "",
) -> CourseFigure:
    """A new figure in the course style.

    Axis labels must name their units in brackets, e.g. 'Time (h)', except an
    axis named in ``categorical`` ('x', 'y' or 'xy'), whose ticks are
    categories. A diagram with no axes uses ``categorical='xy'`` and empty labels.
    """
    from cycler import cycler
    from matplotlib import rc_context

    for axis, label in (("x", xlabel), ("y", ylabel)):
        if axis not in categorical and "(" not in label:
            raise ValueError(f"axis label {label!r} should give its unit in brackets, e.g. 'Time (h)'")
    rc: Any = dict(_RC, **{"axes.prop_cycle": cycler(color=OKABE_ITO)})
    with rc_context(rc):
        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, alpha=0.3)
    ax.set_prop_cycle(color=OKABE_ITO)
    if categorical == "xy" and not xlabel and not ylabel:
        ax.set_axis_off()
    return CourseFigure(fig, alt_text)


def shade_concentration_bands(ax: Axes, band_ids: Sequence[str] | None = None, alpha: float = 0.15) -> list[str]:
    """Shade plasma concentration bands (ranges as spans, single values as dashed lines), each labelled with its source.

    Returns the band ids drawn.
    """
    table = load_table("concentration_bands")
    rows = [table.row(b) for b in band_ids] if band_ids is not None else list(table)
    for row in rows:
        colour = BAND_COLOURS.get(row["band_id"], OKABE_ITO[-1])
        label = f"{row['label']} {cite(row['source_id'])}"
        if row["low_ng_per_ml"] == row["high_ng_per_ml"]:
            ax.axhline(row["low_ng_per_ml"], color=colour, linestyle="--", linewidth=1.2, label=label)
        else:
            ax.axhspan(row["low_ng_per_ml"], row["high_ng_per_ml"], color=colour, alpha=alpha, label=label, linewidth=0)
    return [r["band_id"] for r in rows]
