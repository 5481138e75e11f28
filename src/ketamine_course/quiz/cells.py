"""The quiz's own cells around the answers: the tracker its first cell calls, and the grade cell at its end.

The quiz's first cell calls :func:`track_cells`, which remembers what each
cell was last run with; :func:`unsaved_answers` then says which answer cells
were last run in a version the saved file does not hold (outside IPython
nothing is tracked). The grade cell calls :func:`grade_here`, which hands the
grading to the grader installed with the course, found by its entry point
(``ketamine_course.grader``), so this package never imports the grading wing;
while the quiz is itself being graded it does nothing and loads nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["track_cells", "unsaved_answers", "while_graded", "grade_here", "GRADER_ENTRY_POINTS"]

GRADER_ENTRY_POINTS = "ketamine_course.grader"
"""The entry-point group in which the course package registers its grader (pyproject.toml)."""

_LAST_RUN: dict[str, str] = {}
"""Each cell id's source as it was last run in this kernel."""


def _remember(info: Any) -> None:
    cell_id = getattr(info, "cell_id", None)
    if cell_id:
        _LAST_RUN[str(cell_id)] = info.raw_cell or ""


def track_cells() -> None:
    """Remember each cell's last-run source in this IPython kernel (once; nothing outside IPython), and let the
    installed grader get ready in the background while the learner answers (never while the quiz is graded)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or _remember in shell.events.callbacks.get("pre_run_cell", []):
        return
    shell.events.register("pre_run_cell", _remember)
    if while_graded() is None:
        warm_up = _grader("warm_up")
        if warm_up is not None:
            warm_up()


def _grader(name: str) -> Any | None:
    """The installed grader's function ``name`` (its entry point), or None where no grader is installed."""
    from importlib.metadata import entry_points

    found = list(entry_points(group=GRADER_ENTRY_POINTS, name=name))
    return found[0].load() if found else None


def unsaved_answers(notebook: Path) -> list[str]:
    """Answer cells (by grade id) whose last run in this kernel is not what the saved file holds."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    stale = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution") or cell.get("id") not in _LAST_RUN:
            continue
        if _LAST_RUN[cell["id"]].strip() != cell.source.strip():
            stale.append(str(meta.get("grade_id", cell["id"])))
    return stale


def while_graded() -> Any | None:
    """What the grade cell shows while the quiz itself is being graded or validated (nbgrader sets
    ``NBGRADER_EXECUTION``), or None when it is not: then the cell grades."""
    if not os.environ.get("NBGRADER_EXECUTION"):
        return None
    from IPython.display import HTML

    return HTML("<p>(This cell grades the quiz for a learner; it does nothing while the quiz is being graded.)</p>")


def grade_here(quiz: str | None = None) -> Any:
    """Grade this quiz as saved and show the score and each question's feedback (the quiz's last cell).

    While the quiz itself is being graded or validated (nbgrader sets
    ``NBGRADER_EXECUTION``) this does nothing. Otherwise the installed grader
    (:func:`ketamine_course.grading.here.grade_here`) grades the saved file.
    """
    graded = while_graded()
    if graded is not None:
        return graded
    from IPython.display import HTML

    grader = _grader("grade_here")
    if grader is None:
        return HTML(
            "<p class='ketamine-grade-unsaved'>No grader is installed with this course package "
            "(reinstall it: ./course setup); grade from a terminal with: ./course grade QUIZ</p>"
        )
    return grader(quiz)
