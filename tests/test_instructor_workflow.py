"""The instructor's workflow on one machine, with nbgrader's own commands and a temporary exchange:
release -> fetch -> submit -> collect -> autograde -> feedback -> return -> fetch feedback -> export CSV."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, hidden_lines, page_text, solutions, submission, wrong
from ketamine_course.grading.config import COURSE_ID

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"


def nbgrader(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_release_collect_grade_return_and_export(tmp_path: Path, sandbox: bool) -> None:
    course, exchange, home = tmp_path / "course", tmp_path / "exchange", tmp_path / "students"
    exchange.mkdir(mode=0o777)
    shutil.copytree(ROOT / "source" / QUIZ, course / "source" / QUIZ)
    # The course's own configuration, pointed at this temporary course and exchange.
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\n"
        f"load_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.Exchange.cache = {str(tmp_path / 'cache')!r}\n"
        f"c.ExchangeCollect.check_owner = False\n"
        f"c.BoundedExecute.sandbox = {sandbox!r}\n"
        "from ketamine_course.grading.config import apply_pipeline\n"
        "apply_pipeline(c)  # again, now that the root is this course\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    nbgrader("generate_assignment", QUIZ, "--force", cwd=course, env=env)
    nbgrader("release_assignment", QUIZ, "--force", cwd=course, env=env)

    right = solutions(QUIZ)
    answers = {"ada": right, "ben": {**right, "q3_answer": wrong(right["q3_answer"])}}
    for student, student_answers in answers.items():
        student_home = home / student
        student_home.mkdir(parents=True)
        student_config = f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
        (student_home / "nbgrader_config.py").write_text(student_config)
        nbgrader("fetch_assignment", QUIZ, "--course", COURSE_ID, cwd=student_home, env=env)
        fetched = student_home / QUIZ / f"{QUIZ}.ipynb"
        nb = nbformat.read(fetched, as_version=4)
        filled = submission(QUIZ, student_answers)
        assert [c.source for c in nb.cells if c.cell_type == "markdown"] == [c.source for c in filled.cells if c.cell_type == "markdown"]
        nbformat.write(filled, fetched)
        nbgrader("submit", QUIZ, "--course", COURSE_ID, "--student", student, cwd=student_home, env=env)

    nbgrader("collect", QUIZ, cwd=course, env=env)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["ada", "ben"]
    nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    nbgrader("generate_feedback", QUIZ, "--force", cwd=course, env=env)
    nbgrader("release_feedback", QUIZ, cwd=course, env=env)
    for student in answers:
        nbgrader("fetch_feedback", QUIZ, "--course", COURSE_ID, "--student", student, cwd=home / student, env=env)
        pages = list((home / student / QUIZ / "feedback").rglob(f"{QUIZ}.html"))
        assert pages, f"{student} received no feedback"
        text = page_text(pages[0])
        for line in hidden_lines(QUIZ):
            assert line not in text

    nbgrader("export", "--to", str(tmp_path / "grades.csv"), cwd=course, env=env)
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in answers:
            submission_row = gradebook.find_submission(QUIZ, student)
            assert float(rows[student]["raw_score"]) == pytest.approx(submission_row.score)
            assert float(rows[student]["max_score"]) == pytest.approx(submission_row.max_score)
    assert float(rows["ada"]["raw_score"]) == float(rows["ada"]["max_score"])
    q3_points = 2
    assert float(rows["ben"]["raw_score"]) == float(rows["ben"]["max_score"]) - q3_points
