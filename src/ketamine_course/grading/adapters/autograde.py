"""nbgrader's Autograde converter, made to flag for review (never a silent zero) and to refuse unsafe submissions first.

:func:`install_autograde_hooks`, which ``nbgrader_config.py`` runs through
:func:`~ketamine_course.grading.config.apply_pipeline`, wraps four methods of
nbgrader's ``Autograde`` converter (nbgrader offers no setting to replace the
converter class), and reads its private ``_format_source`` and ``_format_dest``:

* ``init_destination`` refuses an unsafe submission (links, special files,
  oversize, an unplain id) *before* nbgrader copies or reads anything of it,
  so nbgrader reports it as a failed submission and exits non-zero;
* ``init_assignment`` and ``convert_single_notebook`` note a submission whose
  grading fails, with the reason, then let nbgrader handle the failure as it
  always does (it removes what it had written to ``autograded/``);
* ``start`` flags each noted submission once nbgrader is done, with a
  hand-grading copy for the formgrader's Manual Grading
  (:func:`~ketamine_course.grading.review.flag_for_review`), and flags
  submission folders that hold no notebook (nbgrader skips them with a
  warning). A hand-grading copy left from an earlier run is not a graded
  notebook: the next run grades that submission again, as nbgrader retries a
  failed one.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
from pathlib import Path
from typing import Any

from nbgrader.converters import Autograde
from nbgrader.converters.base import NbGraderException

from ..intake import SubmissionRefused, check_student_id, check_tree, configured_limits, printable
from ..review import SubmissionFolders, empty_submission_reason, flag_for_review, is_hand_grading_copy, reason_in_words

__all__ = ["install_autograde_hooks"]

_HOOKED = "_ketamine_course_hooked"


def install_autograde_hooks() -> None:
    """Wrap nbgrader's Autograde converter so that refusals and failures are flagged in the gradebook (idempotent)."""
    if getattr(Autograde, _HOOKED, False):
        return
    init_destination = Autograde.init_destination
    init_assignment = Autograde.init_assignment
    convert_single_notebook = Autograde.convert_single_notebook
    start = Autograde.start

    def flag(self: Any, assignment_id: str, student_id: str, error: BaseException) -> None:
        """Note a failed submission; it is flagged once nbgrader has cleaned up after the failure (see ``start``)."""
        failed = self.__dict__.setdefault("_ketamine_failed", {})
        failed[(assignment_id, student_id)] = reason_in_words(error, assignment_id)

    def record(self: Any, assignment_id: str, student_id: str, reason: str) -> None:
        """Flag a noted submission in the gradebook, with its hand-grading copy, and say so in the log."""
        coursedir = self.coursedir
        folders = SubmissionFolders(
            Path(coursedir.format_path(coursedir.release_directory, ".", assignment_id)),
            Path(coursedir.format_path(coursedir.submitted_directory, student_id, assignment_id)),
            Path(coursedir.format_path(coursedir.autograded_directory, student_id, assignment_id)),
        )
        try:
            flagged = flag_for_review(coursedir.db_url, coursedir.course_id, assignment_id, student_id, reason, folders)
        except Exception as problem:  # the gradebook itself failing must not hide the first failure
            flagged = False
            self.log.error("Could not flag %s in the gradebook: %s", printable(student_id, 80), printable(problem))
        self.log.error(
            "Not graded: %s: %s%s", printable(student_id, 80), reason,
            " (flagged for review in the gradebook)" if flagged else "",
        )

    @functools.wraps(init_destination)
    def refusing_init_destination(self: Any, assignment_id: str, student_id: str) -> bool:
        excluded = [s for s in str(self.coursedir.student_id_exclude or "").split(",") if s]
        if student_id not in excluded:
            try:
                check_student_id(student_id)
                check_tree(Path(self._format_source(assignment_id, student_id)), **configured_limits(self.config))
            except SubmissionRefused as reason:
                flag(self, assignment_id, student_id, reason)
                raise
            _drop_hand_grading_copies(self, assignment_id, student_id)
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
        self._ketamine_failed = {}
        try:
            start(self)
        finally:
            for assignment_id, student_id in empty:
                flag(self, assignment_id, student_id, SubmissionRefused(empty_submission_reason(assignment_id)))
            for (assignment_id, student_id), reason in sorted(self._ketamine_failed.items()):
                record(self, assignment_id, student_id, reason)
        if empty:
            raise NbGraderException(f"{len(empty)} submission folder(s) hold no notebook (flagged for review)")

    Autograde.start = start_flagging_empty_folders
    Autograde.init_destination = refusing_init_destination
    Autograde.init_assignment = flagging_init_assignment
    Autograde.convert_single_notebook = flagging_convert_single_notebook
    setattr(Autograde, _HOOKED, True)


def _drop_hand_grading_copies(converter: Any, assignment_id: str, student_id: str) -> None:
    """Remove a submission's graded folder when it holds only hand-grading copies, so that nbgrader grades the
    submission again (it skips a submission it finds graded, unless forced or resubmitted since)."""
    dest = Path(converter._format_dest(assignment_id, student_id))
    if dest.is_dir() and not dest.is_symlink():
        notebooks = list(dest.glob("*.ipynb"))
        if notebooks and all(is_hand_grading_copy(path) for path in notebooks):
            shutil.rmtree(dest)


def _empty_submissions(converter: Any) -> list[tuple[str, str]]:
    """(quiz, student) of every submission folder this autograde run matches that holds no notebook (nbgrader skips
    them silently)."""
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
