"""The course's steps in nbgrader's pipelines, as nbgrader preprocessors: each a thin shell around a pure core.

Generating a quiz: :class:`CheckJudgeable`. Sanitizing a submission:
:class:`ReportTampering` (first, on the raw submission), :class:`RepairCells`,
then nbgrader's own restoring, then :class:`RecordAnswers`. Autograding:
:class:`~.execute.BoundedExecute`, :class:`JudgeAnswers`,
:class:`SaveJudgedGrades` (in place of nbgrader's ``SaveAutoGrades``),
:class:`FlagTampering`, :class:`SanitizeNotebook`. Feedback:
:class:`RenderMathOffline`. :func:`~ketamine_course.grading.config.apply_pipeline`
puts each where it belongs.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades
from nbgrader.utils import determine_grade, is_solution

from ..hidden import check_judgeable, grade_id_of, inert, judge_cell, recorder_call, split_hidden, verdicts_of
from ..intake import Limits, SubmissionRefused, check_student_id, printable
from ..sanitize import CONTENT_SECURITY_POLICY, inert_for_markdown, math_to_mathml, sanitize_notebook
from ..tamper import read_report, report_path, restore_role, tamper_report
from .schema import valid_metadata

__all__ = [
    "verdict", "hidden_regions", "CheckJudgeable", "RecordAnswers", "JudgeAnswers", "SaveJudgedGrades",
    "ReportTampering", "RepairCells", "FlagTampering", "SanitizeNotebook", "RenderMathOffline",
]


# --------------------------------------------------------------------------
# nbgrader's rule and the gradebook's copy of the quiz
# --------------------------------------------------------------------------


def verdict(cell: NotebookNode) -> float:
    """The score of a test cell by nbgrader's own rule, applied by the grader to outputs whose only result is the
    judge's."""
    score, _ = determine_grade(cell)
    return float(score or 0.0)


def _quiz_notebook(gradebook: Any, resources: dict[str, Any]) -> Any:
    info = resources.get("nbgrader", {})
    return gradebook.find_notebook(info["notebook"], info["assignment"])


def _gradebook_cells(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The quiz's cells as the gradebook holds them (name, source, locked, task, points, solution), read once per
    conversion and kept in ``resources``."""
    store = resources.setdefault("ketamine_course", {})
    if "quiz_cells" not in store:
        with Gradebook(resources["nbgrader"]["db_url"]) as gradebook:
            notebook = _quiz_notebook(gradebook, resources)
            tasks = {cell.name for cell in notebook.task_cells}
            points = {cell.name: cell.max_score for cell in notebook.grade_cells}
            solutions = {cell.name for cell in notebook.solution_cells}
            store["quiz_cells"] = [
                {"name": cell.name, "source": cell.source or "", "locked": bool(cell.locked),
                 "task": cell.name in tasks, "points": points.get(cell.name), "solution": cell.name in solutions}
                for cell in notebook.source_cells
            ]
    cells: list[dict[str, Any]] = store["quiz_cells"]
    return cells


def hidden_regions(resources: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Each test cell's (full source, visible part, hidden region), from the gradebook: the instructor's copy, never
    the submission."""
    regions: dict[str, tuple[str, str, str]] = {}
    for cell in _gradebook_cells(resources):
        visible, hidden = split_hidden(cell["source"])
        if hidden is not None:
            regions[cell["name"]] = (cell["source"], visible, hidden)
    return regions


def _quiz_cells(resources: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """From the gradebook: the release version's source of each nbgrader cell, and each cell's role.

    A role is the nbgrader flags the quiz gave the cell (``grade``,
    ``solution``, ``locked``, and ``points`` for a test cell); task cells
    have none here and are left as they are.
    """
    cells = _gradebook_cells(resources)
    stubs = {cell["name"]: cell["source"].strip() for cell in cells}
    roles: dict[str, dict[str, Any]] = {}
    for cell in cells:
        if cell["task"]:
            continue
        graded = cell["points"] is not None
        role: dict[str, Any] = {"grade": graded, "solution": cell["solution"], "locked": cell["locked"]}
        if graded:
            role["points"] = cell["points"]
        roles[cell["name"]] = role
    return stubs, roles


def _instructor_sources(resources: dict[str, Any]) -> dict[str, str]:
    """The gradebook's copy of each locked cell's source (empty where there is no gradebook)."""
    if "db_url" not in resources.get("nbgrader", {}):
        return {}
    return {cell["name"]: cell["source"] for cell in _gradebook_cells(resources) if cell["locked"]}


def _course_root(resources: dict[str, Any]) -> Path | None:
    """The course root, from the folder ``<root>/submitted/<student>/<quiz>`` (or ``autograded/...``) being graded."""
    folder = Path(resources.get("metadata", {}).get("path", "."))
    steps = ("submitted", "autograded")
    return folder.parents[2] if len(folder.parents) > 2 and folder.parents[1].name in steps else None


# --------------------------------------------------------------------------
# Generating a quiz
# --------------------------------------------------------------------------


class CheckJudgeable(NbGraderPreprocessor):
    """When a quiz is generated: refuse a hidden region the judge cannot run as nbgrader would, naming the cell."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        for cell in nb.cells:
            grade_id = grade_id_of(cell)
            if cell.cell_type == "code" and grade_id is not None:
                check_judgeable(grade_id, cell.source)
        return nb, resources


# --------------------------------------------------------------------------
# Sanitizing a submission
# --------------------------------------------------------------------------


def _refuse_unsafe_id(info: dict[str, Any]) -> None:
    """Last line of defence for an id the configuration could not exclude (nbgrader splits its exclusions on commas)."""
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
            raise SubmissionRefused(
                f"the notebook has {len(nb.cells)} cells; notebooks with more than {Limits.max_cells} are not graded"
            )
        root = _course_root(resources)
        if root is None:
            return nb, resources
        release = root / "release" / info.get("assignment", "") / f"{info.get('notebook', '')}.ipynb"
        if not release.is_file():
            self.log.warning("Tamper report: no release version at %s to compare with", release)
            return nb, resources
        findings = tamper_report(nb, nbformat.read(release, as_version=4), valid_metadata)
        for finding in findings:
            self.log.warning(
                "Tamper report: %s: %s: %s (%s)",
                *(printable(t) for t in (info.get("student"), finding.grade_id, finding.problem, finding.detail)),
            )
        path = report_path(root, info["assignment"], info["student"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(finding) for finding in findings], indent=1), encoding="utf-8")
        return nb, resources


class RepairCells(NbGraderPreprocessor):
    """Make a submission gradable: drop invalid nbgrader metadata; restore each cell's role; of duplicated ids keep the
    student's own copy.

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
            if not valid_metadata(cell.metadata.nbgrader) or cell.metadata.nbgrader["grade_id"] not in stubs:
                del cell.metadata["nbgrader"]  # corrupted, or an id the quiz does not have
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            if grade_id in roles and restore_role(cell, roles[grade_id]):
                self.log.warning(
                    "Cell %r: its nbgrader role was changed; graded with the quiz's own", printable(grade_id)
                )
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


class RecordAnswers(NbGraderPreprocessor):
    """While sanitizing, after nbgrader restored the test cells: swap each hidden region for a recorder call."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        for cell in nb.cells:
            grade_id = grade_id_of(cell)
            if cell.cell_type != "code" or grade_id is None:
                continue
            visible, hidden = split_hidden(cell.source)
            if hidden is not None:
                cell.source = f"{visible}\n{recorder_call(grade_id, hidden, visible)}"
        return nb, resources


# --------------------------------------------------------------------------
# Autograding
# --------------------------------------------------------------------------


class JudgeAnswers(NbGraderPreprocessor):
    """After execution: restore each test cell's source; judge what was not judged (nothing earned); a verdict for
    every test cell."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        regions = hidden_regions(resources)
        verdicts = verdicts_of(resources)
        for cell in nb.cells:
            grade_id = grade_id_of(cell)
            if cell.cell_type != "code" or grade_id is None or is_solution(cell):
                continue
            if grade_id in regions:
                original, visible, hidden = regions[grade_id]
                if grade_id not in verdicts:  # never judged while the kernel ran (it had died): judged on what is there
                    judge_cell(cell, grade_id, visible, hidden, None)
                    verdicts[grade_id] = verdict(cell)
                cell.source = original
            else:  # a test cell without hidden tests: the kernel's outputs, made inert, by nbgrader's rule
                cell.get("metadata", {}).pop("ketamine_course", None)  # the judge's notes, which only it writes
                cell.outputs = inert(cell.get("outputs", []))
                verdicts[grade_id] = verdict(cell)
        return nb, resources


class SaveJudgedGrades(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, recording the grader's verdict of each test cell instead of reading its outputs again.

    A test cell without a verdict (the pipeline did not judge it) scores 0
    and needs manual grading: a score never comes from the notebook.
    """

    def _add_score(self, cell: NotebookNode, resources: dict[str, Any]) -> None:
        if cell.cell_type != "code" or is_solution(cell):
            super()._add_score(cell, resources)  # answer cells graded by hand: nbgrader's own rule (no output read)
            return
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        grade = self.gradebook.find_grade(grade_id, self.notebook_id, self.assignment_id, self.student_id)
        verdicts = verdicts_of(resources)
        grade.auto_score = verdicts.get(grade_id, 0.0)
        grade.needs_manual_grade = grade.manual_score is not None or grade_id not in verdicts
        self.gradebook.db.commit()


class FlagTampering(NbGraderPreprocessor):
    """After nbgrader saved the grades: flag a submission with tamper findings (or a cell nbgrader zeroed for stderr),
    for review."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
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


class SanitizeNotebook(NbGraderPreprocessor):
    """Last step of autograding: the graded notebook nbgrader writes (and the formgrader shows) carries nothing
    active."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        return sanitize_notebook(nb, _instructor_sources(resources)), resources


# --------------------------------------------------------------------------
# Feedback
# --------------------------------------------------------------------------


def drop_judge_details(nb: NotebookNode) -> NotebookNode:
    """Remove the judge's full reasons (:data:`~..hidden.DETAIL`, for the instructor) from a notebook's cells."""
    for cell in nb.cells:
        cell.get("metadata", {}).pop("ketamine_course", None)
    return nb


class RenderMathOffline(NbGraderPreprocessor):
    """Feedback: Markdown cells as clean HTML with their mathematics as MathML (no MathJax, no CDN)."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        sanitize_notebook(nb)  # a second layer: the autograded notebook was already sanitized
        drop_judge_details(nb)
        resources["ketamine_csp"] = CONTENT_SECURITY_POLICY  # the feedback_safe template writes it into the page
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                # cleaning again writes the entities back as characters: make the text inert once more, since
                # the feedback exporter renders the cell as Markdown after this
                cell.source = inert_for_markdown(math_to_mathml(cell.source))
        return nb, resources
