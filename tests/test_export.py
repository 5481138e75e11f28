"""`ketamine-grade export`: Canvas and Moodle grade-import CSVs from a graded class, late penalty included.

The formats are those each LMS documents (see ketamine_course.grading.export): Canvas's identity
columns and Points Possible row, Moodle's one header row with a column to map users from. A grade
the gradebook does not hold (not submitted, submitted but not graded, flagged, awaiting manual
grading) is a blank cell, never a zero nobody earned, and the command names each one with why.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grading_helpers import make_course, question_points, solutions, submission, submit, wrong
from ketamine_course.grading import grade_class
from ketamine_course.grading.cli import main
from ketamine_course.grading.config import COURSE_ID
from ketamine_course.grading.export import (
    FLAGGED,
    NEEDS_MANUAL_GRADING,
    NOT_SUBMITTED,
    NOT_YET_GRADED,
    QuizColumns,
    QuizScore,
    StudentScores,
    Unscored,
    canvas_csv,
    moodle_csv,
    unscored,
    unscored_text,
)
from ketamine_course.grading.export import question_points as scaled

QUIZ = "quiz01_history"
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["Username", "ID number", "Email address", "First name", "Last name"]


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_penalty_is_spread_over_questions_so_they_add_up() -> None:
    score = QuizScore(raw_points=8.0, late_penalty_points=2.0, question_raw_points={"q1": 4.0, "q2": 4.0, "q3": 0.0})
    assert [scaled(score, q) for q in ("q1", "q2", "q3")] == [3.0, 3.0, 0.0]
    assert scaled(QuizScore(3.0, 5.0, {"q1": 3.0}), "q1") == 0.0  # a penalty larger than the score floors at 0, like nbgrader


def test_names_with_commas_and_quotes_stay_in_their_cells() -> None:
    quiz = QuizColumns("quiz", 3.0, {"q1": 3.0})
    student = StudentScores('o"neil', first_name="Ann, Jr", last_name='O"Neil', quizzes={"quiz": QuizScore(2.0, 0.0, {"q1": 2.0})})
    table = list(csv.reader(io.StringIO(canvas_csv([student], [quiz]), newline="")))
    assert table[2] == ['O"Neil, Ann, Jr', "", "", 'o"neil', "", "2"]
    table = list(csv.reader(io.StringIO(moodle_csv([student], [quiz]), newline="")))
    assert table[1] == ['o"neil', "", "", "Ann, Jr", 'O"Neil', "2"]


def _class_of_every_kind() -> tuple[list[StudentScores], list[QuizColumns]]:
    """One student of each kind for quiz "a" (b: a quiz nobody has submitted): scored zero, scored, and the four without
    a score."""
    a = QuizColumns("a", 3.0, {"a1": 1.0, "a2": 2.0})
    b = QuizColumns("b", 1.0, {"b1": 1.0}, submitted_by_anyone=False)
    students = [
        StudentScores("zero", quizzes={"a": QuizScore(0.0, 0.0, {"a1": 0.0, "a2": 0.0})}),
        StudentScores("late", quizzes={"a": QuizScore(3.0, 1.0, {"a1": 1.0, "a2": 2.0})}),
        StudentScores("absent"),
        StudentScores("waiting", quizzes={"a": QuizScore(0.0, 0.0, unscored=NOT_YET_GRADED)}),
        StudentScores("flagged", quizzes={"a": QuizScore(3.0, 0.0, {"a1": 1.0, "a2": 2.0}, FLAGGED)}),
        StudentScores("manual", quizzes={"a": QuizScore(1.0, 0.0, {"a1": 1.0, "a2": 0.0}, NEEDS_MANUAL_GRADING)}),
    ]
    return students, [a, b]


def _grades(text: str, id_column: int) -> dict[str, list[str]]:
    """student id -> grade cells, from a CSV's student rows (Canvas: id in column 3; Moodle: column 0)."""
    table = list(csv.reader(io.StringIO(text, newline="")))
    return {row[id_column]: row[5:] for row in table[1:] if row[id_column]}


@pytest.mark.parametrize("missing_zero", [False, True])
def test_only_a_score_the_gradebook_holds_is_written(missing_zero: bool) -> None:
    """A zero is written where it was earned; every grade without a score is blank (not submitted: 0 with --missing-zero,
    once anyone has submitted the quiz)."""
    students, quizzes = _class_of_every_kind()
    absent = "0" if missing_zero else ""
    expected = {
        "zero": ["0", ""], "late": ["2", ""], "absent": [absent, ""],
        "waiting": ["", ""], "flagged": ["", ""], "manual": ["", ""],
    }
    assert _grades(canvas_csv(students, quizzes, missing_zero=missing_zero), 3) == expected
    assert _grades(moodle_csv(students, quizzes, missing_zero=missing_zero), 0) == expected
    for per_question in (
        _grades(canvas_csv(students, quizzes, per_question=True, missing_zero=missing_zero), 3),
        _grades(moodle_csv(students, quizzes, per_question=True, missing_zero=missing_zero), 0),
    ):
        assert per_question["zero"] == ["0", "0", ""]
        assert per_question["late"] == ["0.67", "1.33", ""]  # the penalty spread over the questions
        assert per_question["absent"] == [absent, absent, ""]
        for student in ("waiting", "flagged", "manual"):
            assert per_question[student] == ["", "", ""], student


def test_each_grade_without_a_score_is_named_with_why() -> None:
    students, quizzes = _class_of_every_kind()
    listing = unscored(students, quizzes[:1])
    assert [(u.student_id, u.reason, u.written) for u in listing] == [
        ("absent", NOT_SUBMITTED, ""), ("waiting", NOT_YET_GRADED, ""), ("flagged", FLAGGED, ""),
        ("manual", NEEDS_MANUAL_GRADING, ""),
    ]
    text = unscored_text(listing, quizzes[:1])
    assert "  absent  a: not submitted (blank)" in text
    assert "  waiting  a: submitted, not yet graded (blank)" in text
    assert "  flagged  a: flagged for review (blank)" in text
    assert "  manual  a: needs manual grading (blank)" in text
    assert "  zero " not in text and "  late " not in text  # scored: not listed
    assert "--missing-zero" in text and "ketamine-grade class" in text and "formgrader" in text

    with_zero = unscored(students, quizzes, missing_zero=True)
    assert [(u.quiz, u.written) for u in with_zero if u.reason == NOT_SUBMITTED] == [("a", "0")] + [("b", "")] * len(students)
    assert all(u.written == "" for u in with_zero if u.reason != NOT_SUBMITTED)
    text = unscored_text(with_zero, quizzes)
    assert "  absent  a: not submitted (written as 0: --missing-zero)" in text
    # a quiz nobody has submitted (not released yet): one line, blank even with --missing-zero
    assert "  every student  b: not submitted (blank: nobody has submitted it yet)" in text and "  zero  b:" not in text
    assert "export with --missing-zero" not in text
    assert unscored_text([], quizzes) == "every student has a score for every quiz exported"
    assert unscored_text([Unscored("a", NOT_YET_GRADED, "new", "no row")], quizzes).count("does not know this student") == 1


@pytest.mark.slow
def test_export_from_a_graded_class_with_a_late_submission(tmp_path: Path, sandbox: bool) -> None:
    course = make_course(tmp_path, QUIZ)
    # nbgrader's own late-penalty plugin: a late submission scores zero; Ben submits a day late.
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url, COURSE_ID) as gradebook:
        gradebook.update_or_create_assignment(QUIZ, duedate="2026-03-01 12:00:00")
        gradebook.update_or_create_student("ada", first_name="Ada", last_name="Lovelace", email="ada@example.org", lms_user_id="1001")
        gradebook.update_or_create_student("ben", first_name="Ben", last_name="Okri", email="Ben@example.org")
        gradebook.update_or_create_student("cy")  # enrolled, never submitted
    right = solutions(QUIZ)
    q3 = next(grade_id for grade_id in right if grade_id.startswith("q3"))
    submit(course, QUIZ, "ada", submission(QUIZ, {**right, q3: wrong(right[q3])}))
    submit(course, QUIZ, "ben", submission(QUIZ, right))
    (course / "submitted" / "ada" / QUIZ / "timestamp.txt").write_text("2026-03-01 11:00:00")
    (course / "submitted" / "ben" / QUIZ / "timestamp.txt").write_text("2026-03-02 12:00:00")
    results = grade_class(course, QUIZ, sandbox=sandbox, progress=None)
    assert [r.error for r in results] == [None, None]

    assert main(["export", "--root", str(course), "--out", str(tmp_path / "grades"), "--section", "Pharmacology 101"]) == 0
    points = question_points(QUIZ)
    total = sum(points.values())
    ada_points = total - points["q3"]

    canvas = rows(tmp_path / "grades" / "canvas.csv")
    assert canvas[0] == [*CANVAS_IDENTITY, QUIZ]
    assert canvas[1] == ["    Points Possible", "", "", "", "", f"{total:g}"]
    assert canvas[2:] == [
        ["Lovelace, Ada", "1001", "", "ada", "Pharmacology 101", f"{ada_points:g}"],
        ["Okri, Ben", "", "", "ben", "Pharmacology 101", "0"],  # all correct, but late: nbgrader's penalty applied
        ["cy", "", "", "cy", "Pharmacology 101", ""],  # no submission: blank, never a zero nobody earned
    ]
    moodle = rows(tmp_path / "grades" / "moodle.csv")
    assert moodle == [
        [*MOODLE_IDENTITY, QUIZ],
        ["ada", "1001", "ada@example.org", "Ada", "Lovelace", f"{ada_points:g}"],
        ["ben", "", "Ben@example.org", "Ben", "Okri", "0"],
        ["cy", "", "", "", "", ""],
    ]

    with Gradebook(db_url, COURSE_ID) as gradebook:
        grade_ids = [cell.name for cell in gradebook.find_notebook(QUIZ, QUIZ).grade_cells]
        ada = {grade.name: grade.score for grade in gradebook.find_submission_notebook(QUIZ, QUIZ, "ada").grades}
        assert gradebook.find_submission(QUIZ, "ben").late_submission_penalty == total
    assert sorted(grade_ids) == sorted(g for g in grade_ids if g.split("_")[0] in points) and len(grade_ids) == len(points)
    per_question = rows(tmp_path / "grades" / "canvas_questions.csv")
    assert per_question[0] == [*CANVAS_IDENTITY, *(f"{QUIZ}: {g}" for g in grade_ids)]
    maxima = {g.split("_")[0]: p for g, p in zip(grade_ids, per_question[1][5:], strict=True)}
    assert {q: float(v) for q, v in maxima.items()} == {q: float(p) for q, p in points.items()}
    assert [float(v) for v in per_question[2][5:]] == [ada[g] for g in grade_ids]
    assert sum(float(v) for v in per_question[2][5:]) == ada_points
    assert per_question[3][5:] == ["0"] * len(grade_ids)
    assert per_question[4][5:] == [""] * len(grade_ids)
    moodle_questions = rows(tmp_path / "grades" / "moodle_questions.csv")
    assert moodle_questions[0] == [*MOODLE_IDENTITY, *(f"{QUIZ}: {g}" for g in grade_ids)]
    assert moodle_questions[1][5:] == per_question[2][5:]


def test_the_command_writes_no_unearned_zero_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A gradebook as a class leaves it: one zero earned, one flagged, one absent, one collected but not graded, one
    awaiting manual grading, and one student the gradebook does not know yet; and a quiz nobody has submitted yet."""
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        gradebook.add_assignment("quiz")
        gradebook.add_notebook("quiz", "quiz")
        gradebook.add_grade_cell("q1_test", "quiz", "quiz", max_score=2, cell_type="code")
        for student in ("ada", "ben", "cy", "dee", "fay"):
            gradebook.add_student(student)
        for student in ("ada", "ben", "fay"):
            gradebook.add_submission("quiz", student)
            grade = gradebook.find_grade("q1_test", "quiz", "quiz", student)
            grade.auto_score, grade.needs_manual_grade = 0.0, student == "fay"  # as autograding a wrong answer leaves it
        gradebook.find_submission_notebook("quiz", "quiz", "ben").flagged = True
        gradebook.add_assignment("zlater")  # generated, not yet released
        gradebook.db.commit()
    for student in ("ada", "ben", "dee", "eve", "fay"):
        (course / "submitted" / student / "quiz").mkdir(parents=True)

    assert main(["export", "--root", str(course), "--out", str(tmp_path / "grades")]) == 0
    said = capsys.readouterr().out
    expected = {"ada": "0", "ben": "", "cy": "", "dee": "", "fay": ""}
    assert rows(tmp_path / "grades" / "moodle.csv")[0][5:] == ["quiz", "zlater"]
    assert {row[0]: row[6] for row in rows(tmp_path / "grades" / "moodle.csv")[1:]} == dict.fromkeys(expected, "")
    for name in ("moodle.csv", "moodle_questions.csv"):
        assert {row[0]: row[5] for row in rows(tmp_path / "grades" / name)[1:]} == expected, name
    for name in ("canvas.csv", "canvas_questions.csv"):
        assert {row[3]: row[5] for row in rows(tmp_path / "grades" / name)[2:]} == expected, name
    assert "  ben  quiz: flagged for review (blank)" in said
    assert "  fay  quiz: needs manual grading (blank)" in said
    assert "  cy  quiz: not submitted (blank)" in said
    assert "  dee  quiz: submitted, not yet graded (blank)" in said
    assert "  eve  quiz: submitted, not yet graded (no row: the gradebook does not know this student yet)" in said
    assert "  ada " not in said
    assert "  every student  zlater: not submitted (blank: nobody has submitted it yet)" in said

    assert main(["export", "--root", str(course), "--out", str(tmp_path / "grades"), "--missing-zero"]) == 0
    said = capsys.readouterr().out
    assert {row[0]: row[5] for row in rows(tmp_path / "grades" / "moodle.csv")[1:]} == {**expected, "cy": "0"}
    assert {row[3]: row[5] for row in rows(tmp_path / "grades" / "canvas_questions.csv")[2:]} == {**expected, "cy": "0"}
    assert "  cy  quiz: not submitted (written as 0: --missing-zero)" in said
    assert "  dee  quiz: submitted, not yet graded (blank)" in said
    # a quiz nobody has submitted is not yet due: no zero for the whole class
    assert {row[0]: row[6] for row in rows(tmp_path / "grades" / "moodle.csv")[1:]} == dict.fromkeys(expected, "")


def test_export_names_an_unknown_quiz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID).close()
    assert main(["export", "--root", str(course), "--quiz", "quiz99", "--out", str(tmp_path / "grades")]) == 2
    assert "the gradebook has no quiz quiz99" in capsys.readouterr().err
    assert not (tmp_path / "grades").exists()
