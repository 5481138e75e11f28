"""`ketamine-grade export`: Canvas and Moodle grade-import CSVs from a graded class, late penalty included.

The formats are those each LMS documents (see ketamine_course.grading.export): Canvas's identity
columns and Points Possible row, Moodle's one header row with a column to map users from.
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
from ketamine_course.grading.export import QuizColumns, QuizScore, StudentScores, canvas_csv, moodle_csv
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
    assert scaled(None, "q1") == 0.0


def test_names_with_commas_and_quotes_stay_in_their_cells() -> None:
    quiz = QuizColumns("quiz", 3.0, {"q1": 3.0})
    student = StudentScores('o"neil', first_name="Ann, Jr", last_name='O"Neil', quizzes={"quiz": QuizScore(2.0, 0.0, {"q1": 2.0})})
    table = list(csv.reader(io.StringIO(canvas_csv([student], [quiz]), newline="")))
    assert table[2] == ['O"Neil, Ann, Jr', "", "", 'o"neil', "", "2"]
    table = list(csv.reader(io.StringIO(moodle_csv([student], [quiz]), newline="")))
    assert table[1] == ['o"neil', "", "", "Ann, Jr", 'O"Neil', "2"]


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
        ["cy", "", "", "cy", "Pharmacology 101", "0"],
    ]
    moodle = rows(tmp_path / "grades" / "moodle.csv")
    assert moodle == [
        [*MOODLE_IDENTITY, QUIZ],
        ["ada", "1001", "ada@example.org", "Ada", "Lovelace", f"{ada_points:g}"],
        ["ben", "", "Ben@example.org", "Ben", "Okri", "0"],
        ["cy", "", "", "", "", "0"],
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
    moodle_questions = rows(tmp_path / "grades" / "moodle_questions.csv")
    assert moodle_questions[0] == [*MOODLE_IDENTITY, *(f"{QUIZ}: {g}" for g in grade_ids)]
    assert moodle_questions[1][5:] == per_question[2][5:]


def test_export_names_an_unknown_quiz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID).close()
    assert main(["export", "--root", str(course), "--quiz", "quiz99", "--out", str(tmp_path / "grades")]) == 2
    assert "the gradebook has no quiz quiz99" in capsys.readouterr().err
    assert not (tmp_path / "grades").exists()
