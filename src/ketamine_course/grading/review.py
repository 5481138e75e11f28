"""Submissions that need a person: never a silent zero.

A submission that cannot be graded automatically (refused at intake, a
damaged notebook, a kernel that could not be stopped...) is recorded in the
gradebook as *flagged* with every question *needing manual grading*, and the
reason, in words, as the automatic comment of each answer. The
formgrader then lists it in its Flagged and Needs Manual Grade columns, and
``ketamine-grade export`` leaves its grade blank instead of writing a zero.

So that the instructor can grade it by hand in the formgrader's Manual Grading
(which lists only submissions with a graded notebook in ``autograded/`` whose
recorded time is the submission's own), :func:`flag_for_review` also writes a
*hand-grading copy* there: the quiz as released, with the student's answers
where their notebook can be read safely (as text, never run), a first cell
saying why it was not graded, and everything made inert as any graded notebook
is (:func:`~.sanitize.sanitize_notebook`).

This holds for ``ketamine-grade class`` and for nbgrader's own
``nbgrader autograde`` (and the formgrader's Autograde button), through
:mod:`.adapters.autograde`, which hooks :func:`flag_for_review` into
nbgrader's ``Autograde`` converter.
"""

from __future__ import annotations

import copy
import datetime
import html
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from .adapters.messages import NO_ASSIGNMENT, NO_NOTEBOOKS
from .intake import SMALL_FILES, SubmissionRefused, check_student_id_ok, check_tree, printable
from .sanitize import sanitize_notebook

__all__ = [
    "NOT_GRADED", "HAND_GRADING", "SubmissionFolders", "empty_submission_reason", "reason_in_words", "flag_for_review",
    "submitted_timestamp", "readable_notebook", "hand_grading_notebook", "is_hand_grading_copy",
    "write_hand_grading_copies",
]

NOT_GRADED = "Not graded automatically"
"""How a flagged submission's comment begins (the formgrader shows it under each answer)."""
HAND_GRADING = "ketamine_course_hand_grading"
"""The notebook metadata key that marks a hand-grading copy in ``autograded/`` (it holds the reason)."""


@dataclass(frozen=True)
class SubmissionFolders:
    """The three folders of one student's quiz in an nbgrader course."""

    released: Path
    """``release/<quiz>/``: the quiz as the students got it."""
    submitted: Path
    """``submitted/<student>/<quiz>/``: what the student handed in."""
    autograded: Path
    """``autograded/<student>/<quiz>/``: the graded notebooks the formgrader shows."""

    @classmethod
    def in_course(cls, course_root: Path, quiz: str, student_id: str) -> SubmissionFolders:
        """The folders in nbgrader's default layout under ``course_root``."""
        root = Path(course_root)
        return cls(
            root / "release" / quiz, root / "submitted" / student_id / quiz, root / "autograded" / student_id / quiz
        )


def empty_submission_reason(quiz: str) -> str:
    """Why a submission folder with no notebook in it is not graded (nbgrader itself only warns and skips it)."""
    return f"the submission folder holds no notebook (expected {quiz}.ipynb); ask the student to submit the quiz again"


def reason_in_words(error: BaseException, quiz: str = "") -> str:
    """Why a submission could not be graded, for the instructor, with the fix where there is one."""
    name = type(error).__name__
    if isinstance(error, SubmissionRefused):
        text = str(error)
        return (
            text if any(word in text for word in ("ask ", "rename"))
            else f"{text}; ask the student to submit again without it"
        )
    if NO_NOTEBOOKS in str(error):
        expected = f"{quiz}.ipynb" if quiz else "the quiz's notebook name"
        return (f"the submission holds no notebook named {expected} (renamed, or another quiz's notebook); "
                "rename it in submitted/ to that name and grade again")
    if name == "NotJSONError":
        return ("the notebook file is not valid JSON (damaged or not a notebook); "
                "ask the student to download the quiz again, redo it and resubmit")
    if name == "ValidationError":
        return ("the notebook does not follow the notebook format (damaged); "
                "ask the student to resubmit a notebook saved by JupyterLab")
    # the machine's problem, not the submission's (or a module of the student's shadowing one)
    if name == "KernelStartFailed":
        return (f"{printable(error, 1200)}; if that names a file of the submission "
                "(a module of the student's named like one "
                "the kernel needs), ask the student to rename it; otherwise fix the grading machine; then grade again")
    if name in ("UnresponsiveKernelError", "DeadKernelError"):
        return "the student's kernel stopped responding and could not be stopped; grade this submission by hand"
    if NO_ASSIGNMENT in str(error):
        return (f"the gradebook does not know {quiz or 'this quiz'}; "
                f"run 'nbgrader generate_assignment {quiz or 'QUIZ'}' first, then grade again")
    if name == "MissingEntry":
        return ("the gradebook does not know this quiz or notebook; "
                "run 'ketamine-grade release' (or nbgrader generate_assignment) for it, then grade again")
    return f"grading failed ({name}: {printable(error, 200)})"


def flag_for_review(
    db_url: str, course_id: str, quiz: str, student_id: str, reason: str, folders: SubmissionFolders | None = None
) -> bool:
    """Record a submission that could not be graded: flagged, every question needing manual grading, the reason as
    each answer's comment.

    Earlier automatic scores of this submission are cleared: the gradebook must
    not show grades of a notebook that is no longer the one submitted. Returns
    False (recording nothing) when the gradebook does not know the quiz or the
    student id is not plain (such an id is never written to the gradebook).

    With ``folders``, the submission is also made ready for the formgrader's
    Manual Grading: its time is recorded as the one nbgrader reads from the
    submission, and a hand-grading copy of each notebook replaces whatever
    ``autograded/`` held (:func:`write_hand_grading_copies`).
    """
    from nbgrader.api import Gradebook, MissingEntry

    if not check_student_id_ok(student_id):
        return False
    with Gradebook(db_url, course_id) as gradebook:
        try:
            gradebook.find_assignment(quiz)
        except MissingEntry:
            return False
        gradebook.update_or_create_student(student_id)
        try:
            submission = gradebook.find_submission(quiz, student_id)
        except MissingEntry:
            submission = gradebook.add_submission(quiz, student_id)
        note = f"{NOT_GRADED}: {printable(reason, 400)}. Review this submission and grade it by hand."
        names = sorted(notebook.name for notebook in submission.notebooks)
        for notebook in submission.notebooks:
            notebook.flagged = True
            notebook.late_submission_penalty = None  # worked out from the cleared scores
            for grade in notebook.grades:
                grade.auto_score = None
                grade.needs_manual_grade = True
            for comment in notebook.comments:
                comment.auto_comment = note
        if folders is not None:
            submission.timestamp = submitted_timestamp(folders.submitted)
        gradebook.db.commit()
    if folders is not None:
        write_hand_grading_copies(folders, names, reason)
    return True


def submitted_timestamp(folder: Path) -> datetime.datetime | None:
    """The submission time nbgrader reads from ``<folder>/timestamp.txt`` (naive UTC), or None.

    The formgrader lists a submission as graded only when the gradebook holds
    this very time. A timestamp file that is a link, not a small plain file, or
    not a time counts as none.
    """
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > SMALL_FILES["timestamp.txt"]:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
        return parse_utc(text) if text else None
    except (OSError, ValueError, OverflowError):
        return None


def readable_notebook(folder: Path, name: str) -> NotebookNode | None:
    """The student's notebook ``<folder>/<name>.ipynb`` as data, or None where it cannot be read safely.

    Nothing is read from a submission the intake refuses (links, special files,
    oversize), nor a notebook that is not a plain file or not a valid notebook.
    """
    try:
        check_tree(folder)
        path = folder / f"{name}.ipynb"
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb
    except Exception:  # refused, or damaged in any of the many ways nbformat's readers report: unreadable either way
        return None


def _grade_id(cell: Any) -> Any:
    """A cell's nbgrader id as the notebook has it (anything, in a student's notebook), or None."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _solution_ids(nb: NotebookNode) -> dict[str, Any]:
    """grade_id -> cell, for each answer (solution) cell of a notebook (the first, where ids repeat)."""
    cells: dict[str, Any] = {}
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if isinstance(grade_id, str) and cell["metadata"]["nbgrader"].get("solution"):
            cells.setdefault(grade_id, cell)
    return cells


def hand_grading_notebook(released: NotebookNode, submitted: NotebookNode | None, reason: str) -> NotebookNode:
    """The notebook the formgrader shows for a submission graded by hand: the released quiz, its answer cells filled
    with the student's (text only, outputs dropped) where ``submitted`` is given, a first cell saying why, made inert.

    Pure: neither argument is changed.
    """
    nb = copy.deepcopy(released)
    trusted = {  # the instructor's own Markdown, kept as written (the sanitizer renders any other)
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in nb.cells
        if cell.cell_type == "markdown" and isinstance(_grade_id(cell), str)
    }
    answers = _solution_ids(submitted) if submitted is not None else {}
    filled = 0
    for grade_id, cell in _solution_ids(nb).items():
        theirs = answers.get(grade_id)
        if theirs is not None and theirs.get("cell_type") == cell.cell_type and isinstance(theirs.get("source"), str):
            cell.source = theirs["source"]
            filled += 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if filled:
        shown = "The answers below are the student's, as submitted (not run)."
    else:
        why = "could not be read" if submitted is None else "has none of this quiz's answer cells"
        shown = (f"The submitted notebook {why}: the answer cells below are the quiz as released, "
                 "without the student's answers.")
    note = nbformat.v4.new_markdown_cell(
        f"**{NOT_GRADED}:** {html.escape(printable(reason, 400))}.\n\n{shown} Each question is graded by hand."
    )
    if any("id" in cell for cell in nb.cells):
        note.id = "hand-grading-note"
    else:
        note.pop("id", None)
    nb.cells.insert(0, note)
    sanitize_notebook(nb, trusted)
    nb.metadata[HAND_GRADING] = printable(reason, 400)
    return nb


def is_hand_grading_copy(path: Path) -> bool:
    """Whether ``path`` is a hand-grading copy written by :func:`write_hand_grading_copies` (not a graded notebook)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return HAND_GRADING in nbformat.read(path, as_version=4).metadata
    except Exception:  # not a notebook: not ours
        return False


def write_hand_grading_copies(folders: SubmissionFolders, notebooks: list[str], reason: str) -> list[Path]:
    """Replace ``folders.autograded`` with a hand-grading copy of each named notebook; return the copies written.

    Each copy is built from the released notebook (a notebook the quiz's release
    does not have is skipped) and the student's, where readable; the
    submission's ``timestamp.txt`` comes along, as nbgrader's own graded folders
    carry it.
    """
    target = folders.autograded
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    written = []
    for name in notebooks:
        released = folders.released / f"{name}.ipynb"
        if not released.is_file():
            continue
        nb = hand_grading_notebook(
            nbformat.read(released, as_version=4), readable_notebook(folders.submitted, name), reason
        )
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target / f"{name}.ipynb")
        written.append(target / f"{name}.ipynb")
    timestamp = folders.submitted / "timestamp.txt"
    if written and submitted_timestamp(folders.submitted) is not None:
        shutil.copyfile(timestamp, target / "timestamp.txt")
    return written
