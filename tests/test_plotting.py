"""The course's figure style."""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_course import pk, plotting


def test_course_figure_has_labels_title_alt_text_and_palette() -> None:
    fig = plotting.course_figure("Ketamine after a 40-min infusion", "Time (h)", "Plasma ketamine (ng/mL)", "A curve rising to a peak at 40 minutes and falling.")
    t = np.linspace(0, 4, 50)
    fig.ax.plot(t, pk.concentration_iv_bolus_ng_per_ml(35, 252, 2.5, t))
    drawn = plotting.shade_concentration_bands(fig.ax, ["analgesia", "antidepressant_peak"])
    assert drawn == ["analgesia", "antidepressant_peak"]
    assert fig.ax.get_xlabel() == "Time (h)" and fig.ax.get_title()
    labels = [h.get_label() for h in fig.ax.get_legend_handles_labels()[0]]
    assert "analgesia [zanos2018]" in labels
    assert fig.ax.lines[0].get_color().lower() == plotting.OKABE_ITO[0].lower()
    html = fig._repr_html_()
    assert 'alt="A curve rising to a peak at 40 minutes and falling."' in html
    assert fig.png_bytes().startswith(b"\x89PNG")


def test_figures_without_alt_text_or_units_are_refused() -> None:
    with pytest.raises(ValueError, match="alt text"):
        plotting.course_figure("t", "Time (h)", "C (ng/mL)", " ")
    with pytest.raises(ValueError, match="unit in brackets"):
        plotting.course_figure("t", "Time", "C (ng/mL)", "alt")


def test_plotting_is_not_imported_by_the_package() -> None:
    """Graded notebooks import the package; it must not drag in matplotlib (slow kernel start)."""
    import subprocess
    import sys

    code = "import sys, ketamine_course.dosing, ketamine_course.pk, ketamine_course.evidence; print('matplotlib' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
