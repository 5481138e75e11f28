"""The grading wing: nbgrader's pipeline, with the key kept out of the student's kernel and the kernel caged.

Its layout is the pipeline. The pure cores, which import nothing of nbgrader:

* :mod:`.intake` - what the grader accepts: plain files and folders, bounded sizes, plain student ids;
* :mod:`.tamper` - the tamper report (once per submission) and the repair of a cell's role;
* :mod:`.hidden` - hidden tests recorded in the kernel and judged in the grader;
* :mod:`.sandbox` (with :mod:`.cgroups`, :mod:`.seccomp`) - each kernel in its cage, limits for the whole kernel;
* :mod:`.sanitize` - graded notebooks and feedback pages made inert.

The one door to nbgrader's and Jupyter's internals, :mod:`.adapters`: the
course's nbgrader preprocessors, the caged ``Execute`` step and kernel manager,
the safe exchange, the hooks in nbgrader's ``Autograde``, the metadata schema,
and the versions all of it supports (checked before anything is graded).

Around them, through nbgrader's documented API:

* :mod:`.review` - submissions that cannot be graded, flagged for a person (never a silent zero);
* :mod:`.config` - one configuration for nbgrader's commands and the course's own;
* :mod:`.run` - grading a class (in parallel workers), grading oneself; :mod:`.check` - the author's check;
  :mod:`.export` - grades for a learning platform; :mod:`.doctor` - what this machine gives the grader;
* :mod:`.cli` - the ``ketamine-grade`` command; :mod:`.here` - the grade cell at the end of each quiz.

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
