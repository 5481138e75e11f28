"""Grades an LMS can import: Canvas and Moodle CSV files, per quiz and per question, from the gradebook.

The gradebook (``gradebook.db``) is the one source: every score here is read
from it, with nbgrader's late penalty applied exactly as ``nbgrader export``
applies it (``max(0, raw score - penalty)``). Per question, each question's
points are scaled by the same factor as its quiz's total (penalised / raw), so
a student's question columns add up to the penalised quiz score (to the
rounding of each cell).

A zero is written only where the gradebook holds one. Every grade the
gradebook does not hold, or holds but not yet for good, is left *blank*
(both LMSs import a blank cell as "no change", so a grade already in the LMS
is never overwritten with an unearned zero), and ``ketamine-grade export``
names each one, with why (:data:`UNSCORED_REASONS`):

* **not submitted**: the gradebook has no submission of the quiz from the
  student, and there is none in the course's ``submitted/`` folder;
* **submitted, not yet graded**: the submission is in ``submitted/`` (collected)
  but the gradebook holds no grade for it yet (run ``ketamine-grade class``);
* **flagged for review**: flagged in the formgrader (one that could not be
  graded automatically, a tampered notebook...); unflag it once reviewed;
* **needs manual grading**: a question awaits a score in the formgrader.

``missing_zero=True`` (``--missing-zero``) is for instructors whose rule is
"missing = 0": a quiz *not submitted* then scores 0, once anyone has submitted
it (a quiz nobody has submitted is not released or not yet collected, and stays
blank). The other three stay blank whatever the option: the student handed
something in, and a zero there would be one nobody earned. A student in ``submitted/`` whom the gradebook does not
know yet (nbgrader adds a student when it grades them) has no row (an LMS
cannot match a row to a student it cannot find) and is named all the same.

Formats, as the LMSs document them:

* **Canvas** gradebook import ("How do I import grades in the Gradebook?",
  Instructure's Instructor Guide; summarised for instructors at
  https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades):
  the first columns are ``Student`` (name, "Last, First"), ``ID``, ``SIS User
  ID``, ``SIS Login ID`` and ``Section``; Canvas matches each row to a student
  by one of the first four; every further column is an assignment, and a column
  whose name Canvas does not know becomes a new assignment. Canvas's own
  gradebook export (which its import reads back) puts a ``Points Possible`` row
  under the header; we write it too, so new assignments get their maxima.
  Here ``ID`` is the student's ``lms_user_id`` in the gradebook (blank when
  unknown) and ``SIS Login ID`` is the nbgrader student id (the hub login).
* **Moodle** CSV grade import (https://docs.moodle.org/311/en/Grade_import):
  one header row, one row per student, numbers with a decimal point; at import
  the teacher maps one identifying column ("Map from") to a Moodle user field
  ("Map to": ``userid``, ``username``, ``useridnumber`` or ``useremail``;
  email addresses compare case-sensitively) and each remaining column to a grade
  item or a new one. We write ``Username`` (the nbgrader id), ``ID number``
  (``lms_user_id``), ``Email address``, ``First name``, ``Last name``, then the
  grades.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "NOT_SUBMITTED",
    "NOT_YET_GRADED",
    "FLAGGED",
    "NEEDS_MANUAL_GRADING",
    "UNSCORED_REASONS",
    "QuizScore",
    "StudentScores",
    "QuizColumns",
    "Unscored",
    "Exported",
    "after_late_penalty",
    "penalised_points",
    "question_points",
    "unscored_reason",
    "canvas_csv",
    "moodle_csv",
    "read_gradebook",
    "unscored",
    "unscored_text",
    "export_files",
]

CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas's own export writes it
MOODLE_ID_COLUMNS = ("Username", "ID number", "Email address", "First name", "Last name")

NOT_SUBMITTED = "not submitted"
NOT_YET_GRADED = "submitted, not yet graded"
FLAGGED = "flagged for review"
NEEDS_MANUAL_GRADING = "needs manual grading"
UNSCORED_REASONS = (NOT_SUBMITTED, NOT_YET_GRADED, FLAGGED, NEEDS_MANUAL_GRADING)
"""Why a student has no score to export for a quiz, in the instructor's words (the order they are listed in)."""


@dataclass(frozen=True)
class QuizScore:
    """One student's result on one quiz: raw points, nbgrader's late penalty, points per question (raw)."""

    raw_points: float
    late_penalty_points: float
    question_raw_points: dict[str, float] = field(default_factory=dict)
    unscored: str | None = None
    """Why the submission has no score to export yet (one of :data:`UNSCORED_REASONS`), or None: it has one."""


@dataclass(frozen=True)
class StudentScores:
    """A student as the gradebook knows them, with a score for each quiz they submitted."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""
    quizzes: dict[str, QuizScore] = field(default_factory=dict)


@dataclass(frozen=True)
class QuizColumns:
    """A quiz's maximum points and its questions (grade ids, in notebook order) with their maxima."""

    name: str
    max_points: float
    question_max_points: dict[str, float]
    submitted_by_anyone: bool = True
    """Whether any student has submitted the quiz (graded or not): one nobody has is not yet due, never missed."""


@dataclass(frozen=True)
class Unscored:
    """A grade the files do not hold as a score: whose, which quiz, why (in words), and what was written instead."""

    quiz: str
    reason: str
    student_id: str
    written: str
    """``""`` (a blank cell), ``"0"`` (not submitted, with ``missing_zero``) or ``"no row"`` (a student the gradebook
    does not know)."""


@dataclass(frozen=True)
class Exported:
    """What :func:`export_files` wrote: the files, every grade they hold no score for (with why), the quizzes."""

    files: list[Path]
    unscored: list[Unscored]
    quizzes: list[QuizColumns]


def after_late_penalty(raw_points: float, late_penalty_points: float) -> float:
    """A quiz score after nbgrader's late penalty, as ``nbgrader export`` computes it: never below 0."""
    return max(0.0, raw_points - late_penalty_points)


def penalised_points(score: QuizScore) -> float:
    """The quiz score after the late penalty (see :func:`after_late_penalty`)."""
    return after_late_penalty(score.raw_points, score.late_penalty_points)


def question_points(score: QuizScore, question: str) -> float:
    """A question's points with the quiz's late penalty spread over its questions in proportion."""
    raw = score.question_raw_points.get(question, 0.0)
    if score.raw_points <= 0:
        return 0.0
    return raw * penalised_points(score) / score.raw_points


def unscored_reason(score: QuizScore | None) -> str | None:
    """Why a student has no score to export for a quiz (``None``: the gradebook has no submission of it), or None."""
    return NOT_SUBMITTED if score is None else score.unscored


def _number(points: float) -> str:
    """Points as a plain decimal with at most two places (``7``, ``7.5``, ``6.67``): what both LMSs read."""
    text = f"{round(points, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _question_column(quiz: str, question: str) -> str:
    return f"{quiz}: {question}"


def _grade_columns(quizzes: Sequence[QuizColumns], per_question: bool) -> list[tuple[str, str | None, float]]:
    """(column name, question or None for the whole quiz, maximum points) in file order."""
    if not per_question:
        return [(q.name, None, q.max_points) for q in quizzes]
    return [
        (_question_column(q.name, question), question, maximum)
        for q in quizzes for question, maximum in q.question_max_points.items()
    ]


def _written_instead(reason: str | None, quiz: QuizColumns, missing_zero: bool) -> str:
    """What a cell holds for a grade without a score: 0 only for a quiz not submitted under "missing = 0", and only
    once others have submitted it (a quiz nobody has submitted is not released or not yet collected)."""
    return "0" if missing_zero and reason == NOT_SUBMITTED and quiz.submitted_by_anyone else ""


def _grade_cells(
    student: StudentScores, quizzes: Sequence[QuizColumns], per_question: bool, missing_zero: bool
) -> list[str]:
    cells: list[str] = []
    for quiz in quizzes:
        score = student.quizzes.get(quiz.name)
        if score is None or score.unscored is not None:
            width = len(quiz.question_max_points) if per_question else 1
            cells.extend([_written_instead(unscored_reason(score), quiz, missing_zero)] * width)
        elif per_question:
            cells.extend(_number(question_points(score, question)) for question in quiz.question_max_points)
        else:
            cells.append(_number(penalised_points(score)))
    return cells


def _write(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


def _canvas_name(student: StudentScores) -> str:
    if student.last_name and student.first_name:
        return f"{student.last_name}, {student.first_name}"
    return student.last_name or student.first_name or student.student_id


def canvas_csv(
    students: Sequence[StudentScores],
    quizzes: Sequence[QuizColumns],
    per_question: bool = False,
    section: str = "",
    missing_zero: bool = False,
) -> str:
    """The Canvas gradebook-import CSV: identity columns, a Points Possible row, one row per student."""
    columns = _grade_columns(quizzes, per_question)
    header = [*CANVAS_ID_COLUMNS, *(name for name, _, _ in columns)]
    possible = [CANVAS_POINTS_ROW, "", "", "", "", *(_number(maximum) for _, _, maximum in columns)]
    rows = [header, possible]
    for student in sorted(students, key=lambda s: s.student_id):
        identity = [_canvas_name(student), student.lms_user_id, "", student.student_id, section]
        rows.append([*identity, *_grade_cells(student, quizzes, per_question, missing_zero)])
    return _write(rows)


def moodle_csv(
    students: Sequence[StudentScores],
    quizzes: Sequence[QuizColumns],
    per_question: bool = False,
    missing_zero: bool = False,
) -> str:
    """The Moodle grade-import CSV: identity columns to map from, then one column per grade item."""
    columns = _grade_columns(quizzes, per_question)
    rows = [[*MOODLE_ID_COLUMNS, *(name for name, _, _ in columns)]]
    for student in sorted(students, key=lambda s: s.student_id):
        identity = [student.student_id, student.lms_user_id, student.email, student.first_name, student.last_name]
        rows.append([*identity, *_grade_cells(student, quizzes, per_question, missing_zero)])
    return _write(rows)


def _collected(submitted: Path | None, quiz: str) -> set[str]:
    """The plain student ids with a submission of ``quiz`` in the course's ``submitted/`` folder (none without one)."""
    from .intake import check_student_id_ok

    if submitted is None or not submitted.is_dir():
        return set()
    return {
        folder.name for folder in submitted.iterdir()
        if check_student_id_ok(folder.name) and os.path.lexists(folder / quiz)
    }


def _held_reason(flagged: bool, needs_manual_grade: bool) -> str | None:
    """Why a graded submission is held back from the files (a flag first: it says the most), or None."""
    if flagged:
        return FLAGGED
    return NEEDS_MANUAL_GRADING if needs_manual_grade else None


def read_gradebook(
    db_url: str, course_id: str, quiz_names: Sequence[str] | None = None, submitted: Path | None = None
) -> tuple[list[StudentScores], list[QuizColumns]]:
    """Every student and every (or the named) released quiz in the gradebook, with raw points, penalties and question
    points.

    ``submitted`` is the course's ``submitted/`` folder: a submission there
    without a grade in the gradebook is :data:`NOT_YET_GRADED` (a student found
    only there is not returned: see :func:`export_files`).
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gradebook:
        known = [a.name for a in gradebook.assignments]
        unknown = [q for q in quiz_names or () if q not in known]
        if unknown:
            raise ValueError(f"the gradebook has no quiz {', '.join(unknown)}; it has {', '.join(known) or 'none'}")
        chosen = [a for a in gradebook.assignments if not quiz_names or a.name in quiz_names]
        quizzes = []
        for assignment in chosen:
            questions = {
                cell.name: float(cell.max_score) for notebook in assignment.notebooks for cell in notebook.grade_cells
            }
            quizzes.append(QuizColumns(assignment.name, float(assignment.max_score), questions))
        collected = {quiz.name: _collected(submitted, quiz.name) for quiz in quizzes}
        students = []
        for student in gradebook.students:
            scores = {}
            for quiz in quizzes:
                try:
                    submission = gradebook.find_submission(quiz.name, student.id)
                except MissingEntry:
                    if student.id in collected[quiz.name]:
                        scores[quiz.name] = QuizScore(0.0, 0.0, unscored=NOT_YET_GRADED)
                    continue
                by_question = {
                    grade.name: float(grade.score or 0.0)
                    for notebook in submission.notebooks for grade in notebook.grades
                }
                flagged = any(notebook.flagged for notebook in submission.notebooks)
                scores[quiz.name] = QuizScore(
                    float(submission.score), float(submission.late_submission_penalty or 0.0), by_question,
                    _held_reason(flagged, bool(submission.needs_manual_grade)),
                )
            students.append(
                StudentScores(
                    student.id, student.first_name or "", student.last_name or "", student.email or "",
                    student.lms_user_id or "", scores,
                )
            )
    taken = {quiz for quiz, ids in collected.items() if ids} | {quiz for s in students for quiz in s.quizzes}
    return students, [replace(quiz, submitted_by_anyone=quiz.name in taken) for quiz in quizzes]


def _listing_order(grade: Unscored) -> tuple[str, int, str]:
    """Unscored grades listed by quiz, then reason (in :data:`UNSCORED_REASONS` order), then student."""
    return grade.quiz, UNSCORED_REASONS.index(grade.reason), grade.student_id


def unscored(
    students: Sequence[StudentScores], quizzes: Sequence[QuizColumns], missing_zero: bool = False
) -> list[Unscored]:
    """Every grade of ``students`` the files hold no score for (see :func:`_listing_order` for the order)."""
    found = [
        Unscored(quiz.name, reason, student.student_id, _written_instead(reason, quiz, missing_zero))
        for student in students for quiz in quizzes
        if (reason := unscored_reason(student.quizzes.get(quiz.name))) is not None
    ]
    return sorted(found, key=_listing_order)


_WHAT_TO_DO = {
    NOT_SUBMITTED: "not submitted: left blank; export with --missing-zero to score them 0",
    NOT_YET_GRADED: "submitted, not yet graded: grade them (ketamine-grade class QUIZ), then export again",
    FLAGGED: "flagged for review: review them in the formgrader and remove the flag, then export again",
    NEEDS_MANUAL_GRADING: "needs manual grading: score them in the formgrader, then export again",
}
_WRITTEN = {
    "": "blank",
    "0": "written as 0: --missing-zero",
    "no row": "no row: the gradebook does not know this student yet",
}
"""What each value of :attr:`Unscored.written` means, as the command says it."""


def unscored_text(listing: Sequence[Unscored], quizzes: Sequence[QuizColumns]) -> str:
    """What ``ketamine-grade export`` says of the grades it wrote no score for: each one, why, and what to do.

    A quiz nobody has submitted (not released yet, say) is one line, not one per student.
    """
    if not listing:
        return "every student has a score for every quiz exported"
    nobody = {quiz.name for quiz in quizzes if not quiz.submitted_by_anyone}
    lines = [f"{len(listing)} grade(s) without a final score in the gradebook "
             "(a blank cell is imported by Canvas and Moodle as \"no change\"):"]
    said: set[str] = set()
    for grade in listing:
        whose = grade.student_id
        if grade.quiz in nobody and grade.reason == NOT_SUBMITTED:
            if grade.quiz in said:
                continue
            said.add(grade.quiz)
            whose = "every student"
        written = "blank: nobody has submitted it yet" if whose == "every student" else _WRITTEN[grade.written]
        lines.append(f"  {whose}  {grade.quiz}: {grade.reason} ({written})")
    lines += [
        _WHAT_TO_DO[reason] for reason in UNSCORED_REASONS
        if any(u.reason == reason and u.written == "" and u.quiz not in nobody for u in listing)
    ]
    return "\n".join(lines)


def _unknown_students(
    students: Sequence[StudentScores], quizzes: Sequence[QuizColumns], submitted: Path | None
) -> list[Unscored]:
    """Submissions in ``submitted/`` of students the gradebook does not know yet: named, with no row in the files."""
    known = {student.student_id for student in students}
    return [
        Unscored(quiz.name, NOT_YET_GRADED, student_id, "no row")
        for quiz in quizzes for student_id in sorted(_collected(submitted, quiz.name) - known)
    ]


def export_files(
    db_url: str,
    course_id: str,
    out_dir: Path,
    quiz_names: Sequence[str] | None = None,
    section: str = "",
    submitted: Path | None = None,
    missing_zero: bool = False,
) -> Exported:
    """Write canvas.csv, canvas_questions.csv, moodle.csv and moodle_questions.csv into ``out_dir``.

    ``submitted`` and ``missing_zero`` are as in :func:`read_gradebook` and
    the module's description.
    """
    students, quizzes = read_gradebook(db_url, course_id, quiz_names, submitted)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "canvas.csv": canvas_csv(students, quizzes, section=section, missing_zero=missing_zero),
        "canvas_questions.csv": canvas_csv(
            students, quizzes, per_question=True, section=section, missing_zero=missing_zero
        ),
        "moodle.csv": moodle_csv(students, quizzes, missing_zero=missing_zero),
        "moodle_questions.csv": moodle_csv(students, quizzes, per_question=True, missing_zero=missing_zero),
    }
    written = []
    for name, text in contents.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    listed = [*unscored(students, quizzes, missing_zero), *_unknown_students(students, quizzes, submitted)]
    return Exported(written, sorted(listed, key=_listing_order), quizzes)
