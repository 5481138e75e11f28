"""What each cell of a quiz was last run with, so the grade cell can refuse to grade answers that are not saved.

The quiz's first cell calls :func:`track_cells`; the grade cell (the grader's
front end, :mod:`ketamine_course.grading.here`) asks :func:`unsaved_answers`
which answer cells were last run in a version the saved file does not hold.
Outside IPython (a script, nbconvert) nothing is tracked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["track_cells", "unsaved_answers"]

_LAST_RUN: dict[str, str] = {}
"""Each cell id's source as it was last run in this kernel."""


def _remember(info: Any) -> None:
    cell_id = getattr(info, "cell_id", None)
    if cell_id:
        _LAST_RUN[str(cell_id)] = info.raw_cell or ""


def track_cells() -> None:
    """Remember each cell's last-run source in this IPython kernel (once; nothing outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or _remember in shell.events.callbacks.get("pre_run_cell", []):
        return
    shell.events.register("pre_run_cell", _remember)


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
