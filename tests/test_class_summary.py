"""The summary `ketamine-grade class` ends with says what the gradebook holds.

Its review flags are the gradebook's flags, read back once each submission is
graded (a passing test whose code wrote to stderr flags a submission as much as
tampering does); its scores are those feedback and the LMS export give, late
penalty included and shown; and a notebook of another quiz, under this quiz's
name or its own, is named as such, in words.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, make_course, release_nb, solutions, source_nb, submission, submit
from ketamine_course.grading.config import COURSE_ID
from ketamine_course.grading.run import SubmissionGrade, grade_class, summary_table
from ketamine_course.grading.tamper import TamperFinding, quiz_of

QUIZ = "quiz01_history"
OTHER = "quiz02_mechanism"


def _count_line(table: str) -> str:
    return table.splitlines()[-1]


def _row(table: str, student: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"{student} "))


def test_a_late_penalty_is_shown_and_counted_in_the_mean() -> None:
    table = summary_table([
        SubmissionGrade("ada", 7.0, 10.0, 1.0),
        SubmissionGrade("ben", 7.0, 10.0, 1.0, late_penalty=1.0),
        SubmissionGrade("cy", 3.0, 10.0, 1.0, late_penalty=5.0),
    ])
    assert _row(table, "ada").split()[1] == "7/10"
    assert "7 − 1 late = 6/10" in _row(table, "ben")
    assert "3 − 5 late = 0/10" in _row(table, "cy")  # never below 0, as nbgrader and the export compute it
    assert "mean score after late penalties 4.33" in _count_line(table)  # (7 + 6 + 0) / 3, not the raw 5.67


def test_the_flagged_count_is_the_gradebook_s_and_each_flag_says_why() -> None:
    table = summary_table([
        SubmissionGrade("ada", 8.0, 10.0, 1.0, flagged=True,
                        review=["q7_test: the student's code wrote to stderr during a passing hidden test"]),
        SubmissionGrade("ben", 10.0, 10.0, 1.0, flagged=True),  # flagged at an earlier grading, still in the gradebook
        SubmissionGrade("cy", 6.0, 10.0, 1.0, needs_manual_grade=True),
        SubmissionGrade("dee", 0.0, 0.0, 0.0, needs_manual_grade=True, error="no submission: there is no folder"),
        SubmissionGrade("eve", 0.0, 10.0, 1.0, flagged=True, from_quiz=OTHER,
                        review=[f"this notebook is from {OTHER}, not {QUIZ}"],
                        tampering=[TamperFinding("intro", "edited", "")] * 9),
    ])
    assert _count_line(table).endswith("; 3 flagged for review in the gradebook")
    assert "wrote to stderr" in _row(table, "ada")
    assert "flagged for review in the gradebook before this grading" in _row(table, "ben")
    assert _row(table, "cy").endswith("needs manual grading")
    assert "not graded: no submission" in _row(table, "dee") and "flagged" not in _row(table, "dee")
    eve = _row(table, "eve")
    assert f"this notebook is from {OTHER}, not {QUIZ}" in eve and "its 9 differences" in eve and "intro" not in eve


def test_a_notebook_is_told_by_its_words_not_its_grade_ids() -> None:
    sources = {quiz: source_nb(quiz) for quiz in (QUIZ, OTHER, "quiz03_pharmacokinetics")}
    assert quiz_of(release_nb(OTHER), sources) == OTHER
    assert quiz_of(release_nb(QUIZ), sources) == QUIZ
    stripped = release_nb(OTHER)
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    assert quiz_of(stripped, sources) == OTHER  # metadata stripped: still its words
    assert quiz_of(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), sources) is None


def _flagged_in_gradebook(course: Path) -> dict[str, bool]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {s.student.id: any(nb.flagged for nb in s.notebooks) for s in gradebook.assignment_submissions(QUIZ)}


@pytest.mark.slow
def test_the_summary_of_a_class_is_its_gradebook(tmp_path: Path, sandbox: bool) -> None:
    course = make_course(tmp_path, QUIZ)
    shutil.copytree(ROOT / "source" / OTHER, course / "source" / OTHER)  # the course's other quiz
    # nbgrader's own late-penalty plugin: a late submission scores zero
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        gradebook.update_or_create_assignment(QUIZ, duedate="2026-03-01 12:00:00")
    right = solutions(QUIZ)
    noisy = right["q7_answer"].replace(
        "def years_between(first_event, later_event):",
        "def years_between(first_event, later_event):\n    import sys\n    print('careful', file=sys.stderr)",
    )
    assert noisy != right["q7_answer"]
    submit(course, QUIZ, "noisy", submission(QUIZ, {**right, "q7_answer": noisy}))  # right, but writes to stderr
    for student, when in (("late", "2026-03-02 12:00:00"), ("ontime", "2026-03-01 11:00:00")):
        submit(course, QUIZ, student, submission(QUIZ, right))
        (course / "submitted" / student / QUIZ / "timestamp.txt").write_text(when)
    submit(course, QUIZ, "renamed_other", release_nb(OTHER))  # quiz02's notebook, saved under quiz01's name
    folder = course / "submitted" / "own_name" / QUIZ
    folder.mkdir(parents=True)
    nbformat.write(release_nb(OTHER), folder / f"{OTHER}.ipynb")  # quiz02's notebook, under its own name

    results = grade_class(course, QUIZ, sandbox=sandbox, progress=None, jobs=2)
    table = summary_table(results)

    flagged = _flagged_in_gradebook(course)
    assert flagged == {"late": False, "noisy": True, "ontime": False, "own_name": True, "renamed_other": True}
    assert _count_line(table).endswith(f"; {sum(flagged.values())} flagged for review in the gradebook"), table
    assert "wrote to stderr during a passing hidden test" in _row(table, "noisy")
    total = results[0].max_score
    assert f"{total:g} − {total:g} late = 0/{total:g}" in _row(table, "late")
    assert _row(table, "ontime").split()[1] == f"{total:g}/{total:g}"
    for student in ("renamed_other", "own_name"):
        assert f"this notebook is from {OTHER}, not {QUIZ}" in _row(table, student), table
    assert f"the submission holds {OTHER}.ipynb" in _row(table, "own_name")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        comments = [c.auto_comment or "" for nb in gradebook.find_submission(QUIZ, "own_name").notebooks for c in nb.comments]
    assert comments and all(f"this notebook is from {OTHER}" in c for c in comments), comments
    assert "StudentError" not in table and "Error" not in table
