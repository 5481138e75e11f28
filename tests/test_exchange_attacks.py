"""The exchange cannot be gamed: lateness from a time the student cannot set, and feedback released to everyone it can be.

With nbgrader's own commands and a temporary exchange, a quiz whose due date
has passed and a late penalty of zero marks:

* an honest late student and one who backdates their submission (renames the
  inbound folder to a time before the due date and writes that time into its
  ``timestamp.txt``) both score 0; with nbgrader's own collect the
  backdated one keeps full marks (the control);
* a submission placed under ``submitted/`` by hand (no ``submission_secret.txt``)
  is named by ``nbgrader release_feedback`` and left out, and every other
  student gets their feedback (nbgrader alone stops for the whole class).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, solutions, submission
from ketamine_course.grading.config import COURSE_ID

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"
DUE = "2026-01-01 00:00:00 UTC"
BEFORE_DUE = "2025-12-31 12:00:00.000000 UTC"


def _nbgrader(*args: str, cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _course(tmp_path: Path, sandbox: bool, collect: str | None = None) -> tuple[Path, Path, dict[str, str]]:
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    shutil.copytree(ROOT / "source" / QUIZ, course / "source" / QUIZ)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\n"
        f"c.ExchangeCollect.check_owner = False\nc.BoundedExecute.sandbox = {sandbox!r}\n"
        "c.LateSubmissionPlugin.penalty_method = 'zero'\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
        + (f"c.ExchangeFactory.collect = {collect!r}\n" if collect else "")
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    _nbgrader("db", "assignment", "add", QUIZ, f"--duedate={DUE}", cwd=course, env=env)
    _nbgrader("generate_assignment", QUIZ, "--force", cwd=course, env=env)
    _nbgrader("release_assignment", QUIZ, "--force", cwd=course, env=env)
    for student in ("late", "backdated"):
        home = tmp_path / "students" / student
        home.mkdir(parents=True)
        (home / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
        )
        _nbgrader("fetch_assignment", QUIZ, "--course", COURSE_ID, cwd=home, env=env)
        nbformat.write(submission(QUIZ, solutions(QUIZ)), home / QUIZ / f"{QUIZ}.ipynb")
        _nbgrader("submit", QUIZ, "--course", COURSE_ID, "--student", student, cwd=home, env=env)
    inbound = exchange / COURSE_ID / "inbound"
    (made,) = inbound.glob(f"backdated+{QUIZ}+*")
    backdated = inbound / f"backdated+{QUIZ}+{BEFORE_DUE}+{made.name.rsplit('+', 1)[1]}"
    made.rename(backdated)
    (backdated / "timestamp.txt").write_text(BEFORE_DUE)
    os.utime(backdated / "timestamp.txt", (1767182400, 1767182400))  # its modification time set back as well
    return course, exchange, env


def _scores(course: Path) -> dict[str, float]:
    """Each student's score after nbgrader's late penalty (the gradebook keeps the raw score and the penalty apart)."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {s.student.id: max(0.0, float(s.score) - float(s.late_submission_penalty or 0)) for s in gradebook.assignment_submissions(QUIZ)}


def test_a_backdated_submission_is_as_late_as_an_honest_late_one(tmp_path: Path, sandbox: bool) -> None:
    course, _, env = _course(tmp_path, sandbox)
    collected = _nbgrader("collect", QUIZ, cwd=course, env=env)
    assert "lateness counts from" in collected.stdout + collected.stderr
    _nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    assert _scores(course) == {"late": 0.0, "backdated": 0.0}


def test_control_nbgraders_own_collect_believes_the_backdated_time(tmp_path: Path, sandbox: bool) -> None:
    course, _, env = _course(tmp_path, sandbox, collect="nbgrader.exchange.default.collect.ExchangeCollect")
    _nbgrader("collect", QUIZ, cwd=course, env=env)
    _nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    assert _scores(course) == {"late": 0.0, "backdated": 10.0}


def test_feedback_is_released_to_everyone_but_a_submission_placed_by_hand(tmp_path: Path, sandbox: bool) -> None:
    course, exchange, env = _course(tmp_path, sandbox)
    _nbgrader("collect", QUIZ, cwd=course, env=env)
    placed = course / "submitted" / "placed" / QUIZ
    placed.mkdir(parents=True)
    nbformat.write(submission(QUIZ, solutions(QUIZ)), placed / f"{QUIZ}.ipynb")
    _nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    _nbgrader("generate_feedback", QUIZ, "--force", cwd=course, env=env)
    released = _nbgrader("release_feedback", QUIZ, cwd=course, env=env)
    assert "Feedback not released: placed: its submission has no " in released.stdout + released.stderr
    pages = list((exchange / COURSE_ID / "feedback").glob("*.html"))
    assert len(pages) == 2, "late's and backdated's pages were released"
