"""The grading wing: nbgrader's pipeline, with the key kept out of the student's kernel and the kernel caged.

Its layout is the pipeline:

* :mod:`.intake` - what the grader accepts: plain files and folders, bounded sizes, plain student ids; a safe collect;
* :mod:`.tamper` - the tamper report (once per submission) and repairs of pasted or corrupted cells;
* :mod:`.hidden` - hidden tests recorded in the kernel and judged in the grader;
* :mod:`.sandbox` and :mod:`.execute` - each kernel in its cage, limits for the whole kernel, nothing left running;
* :mod:`.sanitize` - graded notebooks and feedback pages made inert;
* :mod:`.review` - submissions that cannot be graded, flagged for a person (never a silent zero);
* :mod:`.config` - one configuration for nbgrader's commands and the course's own;
* :mod:`.run` - grading a class (in parallel workers), grading oneself; :mod:`.cli` - the ``ketamine-grade`` command.

It reads what the student's kernel sends in the format of
:mod:`ketamine_course.quiz.wire` (the kernel side, which imports nothing from
here). Names used elsewhere are re-exported here lazily, so importing this
package loads no nbgrader.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "QUIZZES": "run", "grade_class": "run", "self_grade": "run", "generate_release": "run", "find_course_root": "run",
    "SubmissionGrade": "run", "summary_table": "run", "tamper_text": "run",
    "grading_config": "config", "autograde_preprocessors": "config", "sanitize_preprocessors": "config",
    "feedback_preprocessors": "config", "COURSE_ID": "config",
    "BEGIN_HIDDEN": "hidden", "END_HIDDEN": "hidden", "split_hidden": "hidden", "judge_hidden": "hidden",
    "tamper_report": "tamper", "TamperFinding": "tamper",
    "main": "cli",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
