"""Submissions that need a person: never a silent zero.

A submission that cannot be graded automatically (refused at intake, a
damaged notebook, a kernel that could not be stopped...) is recorded in the
gradebook as *flagged* with every question *needing manual grading*, and the
reason, in words, as the automatic comment of each answer. The
formgrader then lists it in its Flagged and Needs Manual Grade columns, and
``ketamine-grade export`` leaves its grade blank instead of writing a zero.

This holds for ``ketamine-grade class`` and for nbgrader's own
``nbgrader autograde`` (and the formgrader's Autograde button), through
:mod:`.adapters.autograde`, which hooks :func:`flag_for_review` into
nbgrader's ``Autograde`` converter.
"""

from __future__ import annotations

from .adapters.messages import NO_ASSIGNMENT, NO_NOTEBOOKS
from .intake import SubmissionRefused, check_student_id_ok, printable

__all__ = ["NOT_GRADED", "empty_submission_reason", "reason_in_words", "flag_for_review"]

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


def flag_for_review(db_url: str, course_id: str, quiz: str, student_id: str, reason: str) -> bool:
    """Record a submission that could not be graded: flagged, every question needing manual grading, the reason as
    each answer's comment.

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
