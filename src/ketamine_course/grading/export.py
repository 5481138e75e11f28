"""Grades an LMS can import: Canvas and Moodle CSV files, per quiz and per question, from the gradebook.

The gradebook (``gradebook.db``) is the one source: every score here is read
from it, with nbgrader's late penalty applied exactly as ``nbgrader export``
applies it (``max(0, raw score - penalty)``, a submission that does not exist
scores 0). A submission flagged for review or awaiting manual grading in the
formgrader (for one, one that could not be graded automatically) is *held
back*: its cells are left blank, which both LMSs import as "no change", and
``ketamine-grade export`` lists it; unflag it in the formgrader once it is
reviewed, then export again. Per question, each question's points are scaled by the same factor
as its quiz's total (penalised / raw), so a student's question columns add up
to the penalised quiz score (to the rounding of each cell).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "QuizScore",
    "StudentScores",
    "QuizColumns",
    "penalised_points",
    "question_points",
    "canvas_csv",
    "moodle_csv",
    "read_gradebook",
    "export_files",
    "held_back",
]

CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas's own export writes it
MOODLE_ID_COLUMNS = ("Username", "ID number", "Email address", "First name", "Last name")


@dataclass(frozen=True)
class QuizScore:
    """One student's result on one quiz: raw points, nbgrader's late penalty, points per question (raw)."""

    raw_points: float
    late_penalty_points: float
    question_raw_points: dict[str, float] = field(default_factory=dict)
    held: bool = False
    """Flagged for review or awaiting manual grading: exported as blank cells, never as a score."""


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


def penalised_points(score: QuizScore | None) -> float:
    """The quiz score after the late penalty, as ``nbgrader export`` computes it; no submission scores 0."""
    if score is None:
        return 0.0
    return max(0.0, score.raw_points - score.late_penalty_points)


def question_points(score: QuizScore | None, question: str) -> float:
    """A question's points with the quiz's late penalty spread over its questions in proportion (0 if not submitted)."""
    if score is None:
        return 0.0
    raw = score.question_raw_points.get(question, 0.0)
    if score.raw_points <= 0:
        return 0.0
    return raw * penalised_points(score) / score.raw_points


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


def _grade_cells(student: StudentScores, quizzes: Sequence[QuizColumns], per_question: bool) -> list[str]:
    cells: list[str] = []
    for quiz in quizzes:
        score = student.quizzes.get(quiz.name)
        if score is not None and score.held:
            cells.extend([""] * (len(quiz.question_max_points) if per_question else 1))
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
    students: Sequence[StudentScores], quizzes: Sequence[QuizColumns], per_question: bool = False, section: str = ""
) -> str:
    """The Canvas gradebook-import CSV: identity columns, a Points Possible row, one row per student."""
    columns = _grade_columns(quizzes, per_question)
    header = [*CANVAS_ID_COLUMNS, *(name for name, _, _ in columns)]
    possible = [CANVAS_POINTS_ROW, "", "", "", "", *(_number(maximum) for _, _, maximum in columns)]
    rows = [header, possible]
    for student in sorted(students, key=lambda s: s.student_id):
        identity = [_canvas_name(student), student.lms_user_id, "", student.student_id, section]
        rows.append([*identity, *_grade_cells(student, quizzes, per_question)])
    return _write(rows)


def moodle_csv(students: Sequence[StudentScores], quizzes: Sequence[QuizColumns], per_question: bool = False) -> str:
    """The Moodle grade-import CSV: identity columns to map from, then one column per grade item."""
    columns = _grade_columns(quizzes, per_question)
    rows = [[*MOODLE_ID_COLUMNS, *(name for name, _, _ in columns)]]
    for student in sorted(students, key=lambda s: s.student_id):
        identity = [student.student_id, student.lms_user_id, student.email, student.first_name, student.last_name]
        rows.append([*identity, *_grade_cells(student, quizzes, per_question)])
    return _write(rows)


def read_gradebook(
    db_url: str, course_id: str, quiz_names: Sequence[str] | None = None
) -> tuple[list[StudentScores], list[QuizColumns]]:
    """Every student and every (or the named) released quiz in the gradebook, with raw points, penalties and question
    points."""
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
        students = []
        for student in gradebook.students:
            scores = {}
            for quiz in quizzes:
                try:
                    submission = gradebook.find_submission(quiz.name, student.id)
                except MissingEntry:
                    continue
                by_question = {
                    grade.name: float(grade.score or 0.0)
                    for notebook in submission.notebooks for grade in notebook.grades
                }
                held = bool(submission.needs_manual_grade) or any(notebook.flagged for notebook in submission.notebooks)
                scores[quiz.name] = QuizScore(
                    float(submission.score), float(submission.late_submission_penalty or 0.0), by_question, held
                )
            students.append(
                StudentScores(
                    student.id, student.first_name or "", student.last_name or "", student.email or "",
                    student.lms_user_id or "", scores,
                )
            )
    return students, quizzes


def held_back(students: Sequence[StudentScores]) -> list[tuple[str, str]]:
    """(student id, quiz) of every grade left blank because it is flagged or awaits manual grading."""
    return sorted((s.student_id, quiz) for s in students for quiz, score in s.quizzes.items() if score.held)


def export_files(
    db_url: str, course_id: str, out_dir: Path, quiz_names: Sequence[str] | None = None, section: str = ""
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Write canvas.csv, canvas_questions.csv, moodle.csv and moodle_questions.csv into ``out_dir``.

    Returns their paths and the grades held back (see :func:`held_back`).
    """
    students, quizzes = read_gradebook(db_url, course_id, quiz_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "canvas.csv": canvas_csv(students, quizzes, section=section),
        "canvas_questions.csv": canvas_csv(students, quizzes, per_question=True, section=section),
        "moodle.csv": moodle_csv(students, quizzes),
        "moodle_questions.csv": moodle_csv(students, quizzes, per_question=True),
    }
    written = []
    for name, text in contents.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written, held_back(students)
