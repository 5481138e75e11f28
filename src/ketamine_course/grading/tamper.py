"""The tamper report, and the repairs that let one student's accident never stop a class.

:func:`tamper_report` compares a raw submission with the quiz's release
version. ``ReportTampering`` (:mod:`.adapters.preprocessors`) runs it once per
submission, first in nbgrader's sanitizing step (so ``nbgrader autograde``
reports too), logs each finding and writes it to
``reports/tamper/<quiz>/<student>.json``, which ``ketamine-grade`` reads back.
``RepairCells`` then makes the notebook
gradable: nbgrader metadata that does not validate is removed (the cell is
graded as an ordinary cell), a cell whose role was changed (an answer cell
marked as a test, other points) gets the quiz's own back from the gradebook,
and of several cells carrying one id (a pasted cell) the student's own copy
keeps the id. Without it, nbgrader stops the
whole batch with ``SchemaTooOldError`` on the first pasted cell.

This module is a pure core: it imports nothing of nbgrader (the adapters pass
nbgrader's metadata check in).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

__all__ = ["TamperFinding", "tamper_report", "restore_role", "report_path", "read_report", "quiz_of"]


@dataclass(frozen=True)
class TamperFinding:
    """One problem with a submission's nbgrader cells."""

    grade_id: str
    problem: str  # deleted, duplicated, edited, metadata stripped, metadata invalid, type changed, added, ...
    detail: str


def _nbgrader_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if "nbgrader" in c.get("metadata", {})]


_ROLE_FLAGS = ("grade", "solution", "locked", "points", "task")
"""The nbgrader flags that give a cell its role in the quiz (restored from the gradebook, compared in the report)."""


def _role_flag(meta: dict[str, Any], flag: str) -> Any:
    """One role flag of a cell's nbgrader metadata (``task`` absent is ``task`` false, as nbgrader reads it)."""
    return bool(meta.get(flag)) if flag == "task" else meta.get(flag)


def tamper_report(
    submitted: NotebookNode, release: NotebookNode, valid_metadata: Callable[[object], bool]
) -> list[TamperFinding]:
    """Compare a submission's graded and locked cells with the release version.

    Reports cells deleted, duplicated, edited (locked cells), stripped of their
    nbgrader metadata, with metadata that no longer validates, changed in type,
    or added with nbgrader metadata that the release does not have. nbgrader
    restores edited locked cells from the gradebook and gives no credit for
    missing ones; the report is for the instructor to review.
    ``valid_metadata`` says whether nbgrader can read a cell's nbgrader
    metadata (:func:`ketamine_course.grading.adapters.schema.valid_metadata`).
    """
    findings: list[TamperFinding] = []
    expected = {c.metadata.nbgrader["grade_id"]: c for c in _nbgrader_cells(release)}
    seen: dict[str, list[NotebookNode]] = {}
    for cell in _nbgrader_cells(submitted):
        meta = cell.metadata.get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        grade_id = grade_id if isinstance(grade_id, str) else "?"
        if not valid_metadata(meta):
            findings.append(TamperFinding(
                grade_id[:100], "metadata invalid",
                "the cell's nbgrader metadata does not validate; it was graded as an ordinary cell",
            ))
            continue
        seen.setdefault(grade_id, []).append(cell)
    plain_sources = {c.source.strip() for c in submitted.cells if "nbgrader" not in c.get("metadata", {})}
    for grade_id, original in expected.items():
        meta = original.metadata.nbgrader
        copies = seen.get(grade_id, [])
        if not copies:
            if original.source.strip() and original.source.strip() in plain_sources:
                findings.append(TamperFinding(
                    grade_id, "metadata stripped", "the cell is present but no longer marked for nbgrader"
                ))
            elif not any(f.grade_id == grade_id for f in findings):
                kind = "test" if meta.get("grade") else "locked" if meta.get("locked") else "answer"
                findings.append(TamperFinding(grade_id, "deleted", f"the {kind} cell is missing"))
            continue
        if len(copies) > 1:
            findings.append(TamperFinding(
                grade_id, "duplicated",
                f"{len(copies)} cells carry this id (a pasted cell?); the student's own copy was graded",
            ))
        cell = copies[0]
        if cell.cell_type != original.cell_type:
            findings.append(TamperFinding(
                grade_id, "type changed", f"{original.cell_type} cell became {cell.cell_type}"
            ))
        if meta.get("locked") and cell.source.strip() != original.source.strip():
            findings.append(TamperFinding(
                grade_id, "edited", "a locked cell was changed (nbgrader restores it from the gradebook)"
            ))
        cell_meta = cell.metadata.nbgrader
        for flag in _ROLE_FLAGS:
            if _role_flag(cell_meta, flag) != _role_flag(meta, flag):
                findings.append(TamperFinding(
                    grade_id, "metadata edited", f"{flag} changed from {meta.get(flag)!r} to {cell_meta.get(flag)!r}"
                ))
    for grade_id in seen:
        if grade_id not in expected:
            findings.append(TamperFinding(
                grade_id[:100], "added", "a cell with nbgrader metadata that the quiz does not have"
            ))
    return findings


def report_path(course_root: Path, quiz: str, student_id: str) -> Path:
    """Where the tamper report of one submission is written."""
    return Path(course_root) / "reports" / "tamper" / quiz / f"{student_id}.json"


def read_report(course_root: Path, quiz: str, student_id: str) -> list[TamperFinding] | None:
    """The findings written for one submission, or None when no report was written."""
    path = report_path(course_root, quiz, student_id)
    if not path.is_file():
        return None
    return [TamperFinding(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]


def restore_role(cell: NotebookNode, role: dict[str, Any]) -> bool:
    """Give a cell back the role the quiz gave it (an answer cell a student marked as graded, changed points); whether
    it changed."""
    meta = cell.metadata.nbgrader
    wanted = {**{k: v for k, v in meta.items() if k not in _ROLE_FLAGS}, **role}  # "task" only where the quiz has one
    if wanted == dict(meta):
        return False
    cell.metadata["nbgrader"] = wanted
    return True


def _quiz_text(quiz: NotebookNode) -> set[str]:
    """The text of a quiz's locked cells that are not tests: its own words (questions, set-up), the same in its source
    and its release, none of them a solution."""
    found = set()
    for cell in _nbgrader_cells(quiz):
        meta = cell.metadata.get("nbgrader")
        if isinstance(meta, dict) and meta.get("locked") and not meta.get("grade") and cell.get("source", "").strip():
            found.add(cell.source.strip())
    return found


def quiz_of(nb: NotebookNode, quizzes: dict[str, NotebookNode]) -> str | None:
    """Which of ``quizzes`` (name -> its notebook) a notebook is: the one whose locked cells it holds the most of, word
    for word; None when it holds none of any (or as many of two).

    Every quiz uses the same grade ids (``q1_test``...), so a notebook of
    another quiz submitted under this one's name is told by its text, not its
    ids; cells stripped of their metadata still count.
    """
    texts = {str(cell.get("source", "")).strip() for cell in nb.get("cells", [])}
    shared = sorted(((len(texts & _quiz_text(quiz)), name) for name, quiz in quizzes.items()), reverse=True)
    if not shared or shared[0][0] == 0 or (len(shared) > 1 and shared[1][0] == shared[0][0]):
        return None
    return shared[0][1]
