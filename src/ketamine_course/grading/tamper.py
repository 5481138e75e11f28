"""The tamper report, and the repairs that let one student's accident never stop a class.

:func:`tamper_report` compares a raw submission with the quiz's release
version. :class:`ReportTampering` runs it once per submission, first in
nbgrader's sanitizing step (so ``nbgrader autograde`` reports too), logs each
finding and writes it to ``reports/tamper/<quiz>/<student>.json``, which
``ketamine-grade`` reads back. :class:`RepairCells` then makes the notebook
gradable: nbgrader metadata that does not validate is removed (the cell is
graded as an ordinary cell), a cell whose role was changed (an answer cell
marked as a test, other points) gets the quiz's own back from the gradebook,
and of several cells carrying one id (a pasted cell) the student's own copy
keeps the id. Without it, nbgrader stops the
whole batch with ``SchemaTooOldError`` on the first pasted cell.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from .intake import Limits, SubmissionRefused, printable

__all__ = ["TamperFinding", "tamper_report", "ReportTampering", "RepairCells", "FlagTampering", "report_path", "read_report"]


@dataclass(frozen=True)
class TamperFinding:
    """One problem with a submission's nbgrader cells."""

    grade_id: str
    problem: str  # deleted, duplicated, edited, metadata stripped, metadata invalid, type changed, added, ...
    detail: str


@functools.lru_cache(maxsize=1)
def _metadata_schema() -> tuple[int, Any]:
    """nbgrader's metadata schema version and a validator for it, checked once (``jsonschema.validate`` re-checks the schema per call)."""
    from jsonschema.validators import validator_for
    from nbgrader.nbgraderformat import MetadataValidator

    schema = MetadataValidator().schema
    checker = validator_for(schema)
    checker.check_schema(schema)
    return int(MetadataValidator.schema_version), checker(schema)


def _valid_nbgrader(cell: NotebookNode) -> bool:
    """Whether a cell's nbgrader metadata passes nbgrader's own checks (its schema version and schema)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict) or not isinstance(meta.get("grade_id", ""), str):
        return False
    version, validator = _metadata_schema()
    return meta.get("schema_version", 0) == version and bool(validator.is_valid(meta))


def _nbgrader_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if "nbgrader" in c.get("metadata", {})]


_ROLE_FLAGS = ("grade", "solution", "locked", "points", "task")
"""The nbgrader flags that give a cell its role in the quiz (restored from the gradebook, compared in the report)."""


def _role_flag(meta: dict[str, Any], flag: str) -> Any:
    """One role flag of a cell's nbgrader metadata (``task`` absent is ``task`` false, as nbgrader reads it)."""
    return bool(meta.get(flag)) if flag == "task" else meta.get(flag)


def tamper_report(submitted: NotebookNode, release: NotebookNode) -> list[TamperFinding]:
    """Compare a submission's graded and locked cells with the release version.

    Reports cells deleted, duplicated, edited (locked cells), stripped of their
    nbgrader metadata, with metadata that no longer validates, changed in type,
    or added with nbgrader metadata that the release does not have. nbgrader
    restores edited locked cells from the gradebook and gives no credit for
    missing ones; the report is for the instructor to review.
    """
    findings: list[TamperFinding] = []
    expected = {c.metadata.nbgrader["grade_id"]: c for c in _nbgrader_cells(release)}
    seen: dict[str, list[NotebookNode]] = {}
    for cell in _nbgrader_cells(submitted):
        meta = cell.metadata.get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        grade_id = grade_id if isinstance(grade_id, str) else "?"
        if not _valid_nbgrader(cell):
            findings.append(TamperFinding(grade_id[:100], "metadata invalid", "the cell's nbgrader metadata does not validate; it was graded as an ordinary cell"))
            continue
        seen.setdefault(grade_id, []).append(cell)
    plain_sources = {c.source.strip() for c in submitted.cells if "nbgrader" not in c.get("metadata", {})}
    for grade_id, original in expected.items():
        meta = original.metadata.nbgrader
        copies = seen.get(grade_id, [])
        if not copies:
            if original.source.strip() and original.source.strip() in plain_sources:
                findings.append(TamperFinding(grade_id, "metadata stripped", "the cell is present but no longer marked for nbgrader"))
            elif not any(f.grade_id == grade_id for f in findings):
                kind = "test" if meta.get("grade") else "locked" if meta.get("locked") else "answer"
                findings.append(TamperFinding(grade_id, "deleted", f"the {kind} cell is missing"))
            continue
        if len(copies) > 1:
            findings.append(TamperFinding(grade_id, "duplicated", f"{len(copies)} cells carry this id (a pasted cell?); the student's own copy was graded"))
        cell = copies[0]
        if cell.cell_type != original.cell_type:
            findings.append(TamperFinding(grade_id, "type changed", f"{original.cell_type} cell became {cell.cell_type}"))
        if meta.get("locked") and cell.source.strip() != original.source.strip():
            findings.append(TamperFinding(grade_id, "edited", "a locked cell was changed (nbgrader restores it from the gradebook)"))
        cell_meta = cell.metadata.nbgrader
        for flag in _ROLE_FLAGS:
            if _role_flag(cell_meta, flag) != _role_flag(meta, flag):
                findings.append(TamperFinding(grade_id, "metadata edited", f"{flag} changed from {meta.get(flag)!r} to {cell_meta.get(flag)!r}"))
    for grade_id in seen:
        if grade_id not in expected:
            findings.append(TamperFinding(grade_id[:100], "added", "a cell with nbgrader metadata that the quiz does not have"))
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


def _course_root(resources: dict[str, Any]) -> Path | None:
    """The course root, from the folder ``<root>/submitted/<student>/<quiz>`` (or ``autograded/...``) being graded."""
    folder = Path(resources.get("metadata", {}).get("path", "."))
    steps = ("submitted", "autograded")
    return folder.parents[2] if len(folder.parents) > 2 and folder.parents[1].name in steps else None


def _refuse_unsafe_id(info: dict[str, Any]) -> None:
    """Last line of defence for an id the configuration could not exclude (nbgrader splits its exclusions on commas)."""
    from nbgrader.api import Gradebook

    from .intake import check_student_id

    try:
        check_student_id(str(info.get("student", "")))
    except SubmissionRefused:
        with Gradebook(info["db_url"]) as gradebook:
            gradebook.remove_student(info["student"])  # nbgrader recorded it before any preprocessor ran
        raise


class ReportTampering(NbGraderPreprocessor):
    """First step of sanitizing (before nbgrader restores locked cells): report tampering, once per submission."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        info = resources.get("nbgrader", {})
        _refuse_unsafe_id(info)
        if len(nb.cells) > Limits.max_cells:
            raise SubmissionRefused(f"the notebook has {len(nb.cells)} cells; notebooks with more than {Limits.max_cells} are not graded")
        root = _course_root(resources)
        if root is None:
            return nb, resources
        release = root / "release" / info.get("assignment", "") / f"{info.get('notebook', '')}.ipynb"
        if not release.is_file():
            self.log.warning("Tamper report: no release version at %s to compare with", release)
            return nb, resources
        findings = tamper_report(nb, nbformat.read(release, as_version=4))
        for finding in findings:
            self.log.warning("Tamper report: %s: %s: %s (%s)", *(printable(t) for t in (info.get("student"), finding.grade_id, finding.problem, finding.detail)))
        path = report_path(root, info["assignment"], info["student"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(finding) for finding in findings], indent=1), encoding="utf-8")
        return nb, resources


def _quiz_cells(resources: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """From the gradebook: the release version's source of each nbgrader cell, and each cell's role.

    A role is the nbgrader flags the quiz gave the cell (``grade``,
    ``solution``, ``locked``, and ``points`` for a test cell); task cells
    have none here and are left as they are.
    """
    from nbgrader.api import Gradebook

    info = resources.get("nbgrader", {})
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        stubs = {cell.name: (cell.source or "").strip() for cell in notebook.source_cells}
        tasks = {cell.name for cell in notebook.task_cells}
        points = {cell.name: cell.max_score for cell in notebook.grade_cells}
        solutions = {cell.name for cell in notebook.solution_cells}
        roles: dict[str, dict[str, Any]] = {}
        for cell in notebook.source_cells:
            if cell.name in tasks:
                continue
            role: dict[str, Any] = {"grade": cell.name in points, "solution": cell.name in solutions, "locked": bool(cell.locked)}
            if cell.name in points:
                role["points"] = points[cell.name]
            roles[cell.name] = role
    return stubs, roles


def _restore_role(cell: NotebookNode, role: dict[str, Any]) -> bool:
    """Give a cell back the role the quiz gave it (an answer cell a student marked as graded, changed points); whether it changed."""
    meta = cell.metadata.nbgrader
    wanted = {**{k: v for k, v in meta.items() if k not in _ROLE_FLAGS}, **role}  # "task" only where the quiz has one
    if wanted == dict(meta):
        return False
    cell.metadata["nbgrader"] = wanted
    return True


class RepairCells(NbGraderPreprocessor):
    """Make a submission gradable: drop invalid nbgrader metadata; restore each cell's role; of duplicated ids keep the student's own copy.

    Cells whose id the quiz does not have lose their metadata too. Of several
    answer cells with one id, the last one whose source differs
    from the release's stub keeps the id (the copy the student worked in);
    otherwise, and for test and locked cells, the first. The others lose
    their nbgrader metadata and are graded as ordinary cells.
    """

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        stubs, roles = _quiz_cells(resources)
        copies: dict[str, list[NotebookNode]] = {}
        for cell in nb.cells:
            if "nbgrader" not in cell.get("metadata", {}):
                continue
            if not _valid_nbgrader(cell) or cell.metadata.nbgrader["grade_id"] not in stubs:
                del cell.metadata["nbgrader"]  # corrupted, or an id the quiz does not have
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            if grade_id in roles and _restore_role(cell, roles[grade_id]):
                self.log.warning("Cell %r: its nbgrader role was changed; graded with the quiz's own", printable(grade_id))
            copies.setdefault(grade_id, []).append(cell)
        for grade_id, cells in copies.items():
            if len(cells) == 1:
                continue
            keep = cells[0]
            if cells[0].metadata.nbgrader.get("solution") and not cells[0].metadata.nbgrader.get("grade"):
                edited = [c for c in cells if c.source.strip() != stubs.get(grade_id, "")]
                keep = edited[-1] if edited else cells[0]
            for cell in cells:
                if cell is not keep:
                    del cell.metadata["nbgrader"]
            self.log.warning("Cell id %r appears %d times; graded the student's own copy", grade_id, len(cells))
        return nb, resources


class FlagTampering(NbGraderPreprocessor):
    """After nbgrader saved the grades: flag a submission with tamper findings (or a cell nbgrader zeroed for stderr), for review."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        from nbgrader.api import Gradebook

        info = resources.get("nbgrader", {})
        root = _course_root(resources)
        findings = read_report(root, info.get("assignment", ""), info.get("student", "")) if root else None
        review = resources.get("ketamine_course", {}).get("review", [])
        for reason in review:
            self.log.warning("Flagged for review: %s: %s", info.get("student"), reason)
        if findings or review:
            with Gradebook(info["db_url"]) as gradebook:
                notebook = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                notebook.flagged = True
                gradebook.db.commit()
        return nb, resources
