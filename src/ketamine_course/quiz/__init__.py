"""The kernel side of the quizzes: everything a quiz's own cells run, and nothing of the grader.

A quiz notebook runs in the student's kernel, while the student works and
again, caged, while it is graded. That kernel imports this package only:

* :mod:`.checks` - the checks the quiz's cells call: visible ``check_*`` (the
  form of an answer, never whether it is right) and hidden ``grade_*`` (run by
  the grader beside the key);
* :mod:`.wire` - the one-line records in which the kernel hands the grader the
  values a hidden test reads (the grader reads them with the same module);
* :mod:`.cells` - :func:`track_cells`, which the quiz's first cell calls so
  that the grade cell can say "save first" when an answer run is not the saved
  one, and :func:`grade_here`, the grade cell, which finds the grader by its
  entry point.

It imports nothing of :mod:`ketamine_course.grading` and nothing of nbgrader
(``tests/test_layout.py`` checks the import graph, and what a quiz's kernel
loads while it is graded).
"""

from __future__ import annotations

from .cells import grade_here, track_cells
from .checks import (
    NOT_YET_GRADED,
    SLIPS,
    QuizCheckFailed,
    check_choice,
    check_function,
    check_number,
    grade_choice,
    grade_function,
    grade_number,
)

__all__ = [
    "QuizCheckFailed", "check_choice", "check_number", "check_function", "SLIPS", "grade_choice", "grade_number",
    "grade_function", "NOT_YET_GRADED", "track_cells", "grade_here",
]
