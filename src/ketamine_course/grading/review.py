"""Submissions that need a person: never a silent zero.

A submission that cannot be graded automatically (refused at intake, a
damaged notebook, a kernel that could not be stopped...) is recorded in the
gradebook as *flagged* with every question *needing manual grading*, and the
reason, in words, as the automatic comment of each answer. The
formgrader then lists it in its Flagged and Needs Manual Grade columns, and
``ketamine-grade export`` leaves its grade blank instead of writing a zero.

This holds for ``ketamine-grade class`` and for nbgrader's own
``nbgrader autograde`` (and the formgrader's Autograde button):
:func:`install_autograde_hooks`, which ``nbgrader_config.py`` runs through
:func:`~ketamine_course.grading.config.apply_pipeline`, wraps three methods of
nbgrader's ``Autograde`` converter (nbgrader offers no setting to replace the
converter class):

* ``init_destination`` refuses an unsafe submission (links, special files,
  oversize, an unplain id) *before* nbgrader copies or reads anything of it,
  so nbgrader reports it as a failed submission and exits non-zero;
* ``init_assignment`` and ``convert_single_notebook`` flag a submission whose
  grading fails, with the reason, then let nbgrader handle the failure as it
  always does.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .intake import SubmissionRefused, _configured_limits, check_student_id, check_student_id_ok, check_tree, printable

__all__ = ["NOT_GRADED", "empty_submission_reason", "reason_in_words", "flag_for_review", "install_autograde_hooks"]

NOT_GRADED = "Not graded automatically"
"""How a flagged submission's comment begins (the formgrader shows it under each answer)."""


def empty_submission_reason(quiz: str) -> str:
    """Why a submission folder with no notebook in it is not graded (nbgrader itself only warns and skips it)."""
    return f"the submission folder holds no notebook (expected {quiz}.ipynb); ask the student to submit the quiz again"


def reason_in_words(error: BaseException, quiz: str = "") -> str:
    """Why a submission could not be graded, for the instructor, with the fix where there is one."""
    name = type(error).__name__
    if isinstance(error, SubmissionRefused):
        text = str(error)
        return text if any(word in text for word in ("ask ", "rename")) else f"{text}; ask the student to submit again without it"
    if "No notebooks found" in str(error):
        expected = f"{quiz}.ipynb" if quiz else "the quiz's notebook name"
        return (f"the submission holds no notebook named {expected} (renamed, or another quiz's notebook); "
                "rename it in submitted/ to that name and grade again")
    if name == "NotJSONError":
        return "the notebook file is not valid JSON (damaged or not a notebook); ask the student to download the quiz again, redo it and resubmit"
    if name == "ValidationError":
        return "the notebook does not follow the notebook format (damaged); ask the student to resubmit a notebook saved by JupyterLab"
    if name == "KernelStartFailed":  # the machine's problem, not the submission's (or a module of the student's shadowing one)
        return (f"{printable(error, 1200)}; if that names a file of the submission (a module of the student's named like one "
                "the kernel needs), ask the student to rename it; otherwise fix the grading machine; then grade again")
    if name in ("UnresponsiveKernelError", "DeadKernelError"):
        return "the student's kernel stopped responding and could not be stopped; grade this submission by hand"
    if "No assignment with ID" in str(error):
        return f"the gradebook does not know {quiz or 'this quiz'}; run 'nbgrader generate_assignment {quiz or 'QUIZ'}' first, then grade again"
    if name == "MissingEntry":
        return "the gradebook does not know this quiz or notebook; run 'ketamine-grade release' (or nbgrader generate_assignment) for it, then grade again"
    return f"grading failed ({name}: {printable(error, 200)})"


def flag_for_review(db_url: str, course_id: str, quiz: str, student_id: str, reason: str) -> bool:
    """Record a submission that could not be graded: flagged, every question needing manual grading, the reason as each answer's comment.

    Earlier automatic scores of this submission are cleared: the gradebook must
    not show grades of a notebook that is no longer the one submitted. Returns
    False (recording nothing) when the gradebook does not know the quiz or the
    student id is not plain (such an id is never written to the gradebook).
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
        for notebook in submission.notebooks:
            notebook.flagged = True
            for grade in notebook.grades:
                grade.auto_score = None
                grade.needs_manual_grade = True
            for comment in notebook.comments:
                comment.auto_comment = note
        gradebook.db.commit()
    return True


_HOOKED = "_ketamine_course_hooked"


def install_autograde_hooks() -> None:
    """Wrap nbgrader's Autograde converter so that refusals and failures are flagged in the gradebook (idempotent)."""
    from nbgrader.converters import Autograde

    if getattr(Autograde, _HOOKED, False):
        return
    init_destination = Autograde.init_destination
    init_assignment = Autograde.init_assignment
    convert_single_notebook = Autograde.convert_single_notebook
    start = Autograde.start

    def flag(self: Any, assignment_id: str, student_id: str, error: BaseException) -> None:
        reason = reason_in_words(error, assignment_id)
        try:
            flagged = flag_for_review(self.coursedir.db_url, self.coursedir.course_id, assignment_id, student_id, reason)
        except Exception as problem:  # the gradebook itself failing must not hide the first failure
            flagged = False
            self.log.error("Could not flag %s in the gradebook: %s", printable(student_id, 80), printable(problem))
        self.log.error("Not graded: %s: %s%s", printable(student_id, 80), reason, " (flagged for review in the gradebook)" if flagged else "")

    @functools.wraps(init_destination)
    def refusing_init_destination(self: Any, assignment_id: str, student_id: str) -> bool:
        excluded = [s for s in str(self.coursedir.student_id_exclude or "").split(",") if s]
        if student_id not in excluded:
            try:
                check_student_id(student_id)
                check_tree(Path(self._format_source(assignment_id, student_id)), **_configured_limits(self.config))
            except SubmissionRefused as reason:
                flag(self, assignment_id, student_id, reason)
                raise
        return bool(init_destination(self, assignment_id, student_id))

    @functools.wraps(init_assignment)
    def flagging_init_assignment(self: Any, assignment_id: str, student_id: str) -> None:
        self._ketamine_current = (assignment_id, student_id)
        try:
            init_assignment(self, assignment_id, student_id)
        except Exception as error:
            flag(self, assignment_id, student_id, error)
            raise

    @functools.wraps(convert_single_notebook)
    def flagging_convert_single_notebook(self: Any, notebook_filename: str) -> None:
        try:
            convert_single_notebook(self, notebook_filename)
        except Exception as error:
            assignment_id, student_id = getattr(self, "_ketamine_current", ("", ""))
            if student_id:
                flag(self, assignment_id, student_id, error)
            raise

    @functools.wraps(start)
    def start_flagging_empty_folders(self: Any) -> None:
        empty = _empty_submissions(self)
        try:
            start(self)
        finally:
            for assignment_id, student_id in empty:
                flag(self, assignment_id, student_id, SubmissionRefused(empty_submission_reason(assignment_id)))
        if empty:
            from nbgrader.converters.base import NbGraderException

            raise NbGraderException(f"{len(empty)} submission folder(s) hold no notebook (flagged for review)")

    Autograde.start = start_flagging_empty_folders
    Autograde.init_destination = refusing_init_destination
    Autograde.init_assignment = flagging_init_assignment
    Autograde.convert_single_notebook = flagging_convert_single_notebook
    setattr(Autograde, _HOOKED, True)


def _empty_submissions(converter: Any) -> list[tuple[str, str]]:
    """(quiz, student) of every submission folder this autograde run matches that holds no notebook (nbgrader skips them silently)."""
    import glob
    import os
    import re

    pattern = converter._format_source(converter.coursedir.assignment_id, converter.coursedir.student_id)
    parse = re.compile(converter._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True))
    excluded = {s for s in str(converter.coursedir.student_id_exclude or "").split(",") if s}
    empty = []
    for folder in sorted(glob.glob(pattern)):
        match = parse.match(folder)
        if match is None or match["student_id"] in excluded or os.path.islink(folder) or not os.path.isdir(folder):
            continue
        if not glob.glob(os.path.join(glob.escape(folder), converter.coursedir.notebook_id + ".ipynb")):
            empty.append((match["assignment_id"], match["student_id"]))
    return empty
