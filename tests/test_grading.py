"""Grading with nbgrader over simulated classes: correct, blank, wrong, broken and tampered submissions."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import nbformat
import pytest

from grading_helpers import (
    QUIZZES,
    ROOT,
    hidden_lines,
    make_course,
    page_text,
    question_points,
    release_nb,
    solution_lines,
    solutions,
    submission,
    submit,
    wrong,
)
from ketamine_course.grading import generate_release, grade_class, tamper_report
from ketamine_course.grading import run as grading_run
from ketamine_course.grading.adapters.schema import valid_metadata

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python


def test_release_is_regenerated_byte_identically(tmp_path: Path) -> None:
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source", course / "source")
    for quiz in QUIZZES:
        generate_release(course, quiz, db_url=f"sqlite:///{tmp_path / 'gradebook.db'}")
    comparison = filecmp.dircmp(ROOT / "release", course / "release")
    assert sorted(p.name for p in (ROOT / "release").iterdir()) == sorted(QUIZZES)
    for quiz in QUIZZES:
        committed = (ROOT / "release" / quiz / f"{quiz}.ipynb").read_bytes()
        regenerated = (course / "release" / quiz / f"{quiz}.ipynb").read_bytes()
        assert committed == regenerated, f"release/{quiz} is stale: run `ketamine-grade release`"
    assert not comparison.left_only and not comparison.right_only


@pytest.mark.parametrize("quiz", QUIZZES)
def test_release_reveals_no_solution_or_hidden_test(quiz: str) -> None:
    text = (ROOT / "release" / quiz / f"{quiz}.ipynb").read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "grade_choice", "grade_number", "grade_function"):
        assert marker not in text
    for line in hidden_lines(quiz) + solution_lines(quiz):
        assert line not in text, line


@pytest.fixture(scope="module", params=QUIZZES)
def graded_class(request, tmp_path_factory, sandbox):
    """One quiz graded for a whole simulated class, in one process, twice (to check regrading)."""
    quiz = request.param
    course = make_course(tmp_path_factory.mktemp(quiz), quiz)
    right = solutions(quiz)
    points = question_points(quiz)
    students = {"correct": submission(quiz, right), "blank": submission(quiz)}
    for question in points:
        answers = dict(right)
        answers[f"{question}_answer"] = wrong(right[f"{question}_answer"])
        students[f"wrong_{question}"] = submission(quiz, answers)
    broken = dict(right)
    broken["q1_answer"] = right["q1_answer"] + '\nthis is not python ("'
    students["syntax_error"] = submission(quiz, broken)
    looping = dict(right)
    looping["q2_answer"] = "while True:\n    pass"
    students["infinite_loop"] = submission(quiz, looping)
    # tampering: a wrong answer to q1 hidden behind an edited, deleted or stripped test cell
    tampered_answers = dict(right)
    tampered_answers["q1_answer"] = wrong(right["q1_answer"])
    edited = submission(quiz, tampered_answers)
    next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_test").source = "pass"
    students["tamper_edit"] = edited
    deleted = submission(quiz, tampered_answers)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "q1_test"]
    students["tamper_delete"] = deleted
    stripped = submission(quiz, tampered_answers)
    for cell in stripped.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "q1_test":
            del cell.metadata["nbgrader"]
            cell.source = "pass"
    students["tamper_strip"] = stripped
    for name, nb in students.items():
        submit(course, quiz, name, nb)
    db = f"sqlite:///{course / 'gradebook.db'}"
    # the class in two workers (ketamine-grade class --jobs 2), then a regrade of every kind of submission in one
    first = {r.student_id: r for r in grade_class(course, quiz, timeout_s=5, progress=None, db_url=db, sandbox=sandbox, jobs=2)}
    kinds = ["correct", "wrong_q1", "blank", "syntax_error", "infinite_loop", "tamper_edit", "tamper_strip"]
    again = {r.student_id: r for r in grade_class(course, quiz, kinds, timeout_s=5, progress=None, db_url=db, sandbox=sandbox, jobs=1)}
    return quiz, course, points, first, again


def test_correct_submission_gets_full_marks(graded_class) -> None:
    quiz, _, points, results, _ = graded_class
    correct = results["correct"]
    assert correct.error is None
    assert correct.score == correct.max_score == sum(points.values()), correct.messages
    assert not correct.tampering


def test_blank_submission_gets_zero_with_helpful_messages(graded_class) -> None:
    _, _, _, results, _ = graded_class
    blank = results["blank"]
    assert blank.score == 0
    assert all(("no answer yet" in m or "NotImplementedError" in m) for m in blank.messages.values()), blank.messages


def test_each_wrong_answer_loses_exactly_its_points(graded_class) -> None:
    _, _, points, results, _ = graded_class
    total = sum(points.values())
    for question, value in points.items():
        result = results[f"wrong_{question}"]
        assert result.score == total - value, (question, result.messages)
        assert result.questions[f"{question}_test"][0] == 0
        # the student is told it failed: a hidden test's ✗, or the visible check's error, which begins with the question
        # (a passing cell's messages name the question too, "✓ q1: correct", so naming it alone proves nothing)
        message = result.messages[f"{question}_test"]
        assert "✗" in message or message.startswith(f"{question}: "), (question, message)
        assert "the hidden tests passed" not in message, (question, message)


def test_syntax_error_and_infinite_loop_cost_only_their_question(graded_class) -> None:
    _, _, points, results, _ = graded_class
    total = sum(points.values())
    assert results["syntax_error"].score == total - points["q1"]
    loop = results["infinite_loop"]
    assert loop.error is None and loop.score == total - points["q2"]
    # a sanity bound: stopped by the per-cell limit (timeout_s=5, about 6 s in all), not the notebook's (180 s)
    assert loop.seconds < 90, "the loop is stopped by the per-cell time limit"


@pytest.mark.parametrize("kind", ["tamper_edit", "tamper_delete", "tamper_strip"])
def test_tampered_test_cells_earn_nothing_and_are_reported(graded_class, kind: str) -> None:
    _, _, points, results, _ = graded_class
    result = results[kind]
    assert result.score <= sum(points.values()) - points["q1"], "no unearned points"
    assert result.tampering, "the tamper report lists it"
    assert result.needs_manual_grade
    assert any(t.grade_id == "q1_test" for t in result.tampering)


def test_every_autograde_run_writes_the_tamper_report(graded_class) -> None:
    import json

    _, course, _, _, _ = graded_class
    quiz = graded_class[0]
    edited = json.loads((course / "reports" / "tamper" / quiz / "tamper_edit.json").read_text())
    assert {"grade_id": "q1_test", "problem": "edited"} in [{k: f[k] for k in ("grade_id", "problem")} for f in edited]
    assert json.loads((course / "reports" / "tamper" / quiz / "correct.json").read_text()) == []


def test_regrading_in_one_worker_gives_the_grades_of_two(graded_class) -> None:
    _, _, _, first, again = graded_class
    assert len(again) == 7
    for student in again:
        assert again[student].questions == first[student].questions, student
        assert again[student].score == first[student].score, student
        assert again[student].messages == first[student].messages, student
        assert again[student].tampering == first[student].tampering, student
        assert again[student].error == first[student].error is None, student


def test_feedback_shows_no_hidden_test_or_solution(graded_class, sandbox) -> None:
    quiz, course, _, _, _ = graded_class
    api = grading_run._api(grading_run.grading_config(course, f"sqlite:///{course / 'gradebook.db'}", sandbox=sandbox))
    for student in ("blank", "wrong_q1"):
        assert api.generate_feedback(quiz, student, force=True)["success"]
        text = page_text(course / "feedback" / student / quiz / f"{quiz}.html")
        for line in hidden_lines(quiz):
            assert line not in text, line
        for name in ("grade_choice", "grade_number", "grade_function", "record_answers", "HIDDEN TESTS"):
            assert name not in text
    blank_text = page_text(course / "feedback" / "blank" / quiz / f"{quiz}.html")
    for line in solution_lines(quiz):
        assert line not in blank_text, line


def test_tamper_report_findings_on_a_duplicated_cell() -> None:
    quiz = QUIZZES[0]
    nb = submission(quiz, solutions(quiz))
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_test")
    nb.cells.append(nbformat.from_dict(dict(test_cell)))
    findings = tamper_report(nb, release_nb(quiz), valid_metadata)
    assert [(f.grade_id, f.problem) for f in findings] == [("q1_test", "duplicated")]
    assert tamper_report(submission(quiz, solutions(quiz)), release_nb(quiz), valid_metadata) == []


def test_ketamine_grade_reads_the_course_s_nbgrader_config(tmp_path: Path) -> None:
    """One configuration: settings in the course's nbgrader_config.py (a late penalty, a timeout) reach ketamine-grade's grading."""
    from ketamine_course.grading.config import grading_config

    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.Execute.timeout = 5\n"
        "c.AssignLatePenalties.penalty_method = 'zero'\n"
        "c.BoundedExecute.memory_bytes = 1234567890\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    config = grading_config(tmp_path)
    assert config.Execute.timeout == 5
    assert config.AssignLatePenalties.penalty_method == "zero"
    assert config.BoundedExecute.memory_bytes == 1234567890
    assert grading_config(tmp_path, timeout_s=9).Execute.timeout == 9, "a command-line option overrides the file"
