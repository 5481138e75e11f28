"""Grading a quiz from inside it: the saved file is graded exactly as an instructor's grading would, or refused as unsaved."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from grading_helpers import ROOT, nbgrader_meta, question_points, solutions, submission
from ketamine_course.grading import here
from ketamine_course.quiz import SLIPS, cells

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python
QUIZ = "quiz03_pharmacokinetics"
POINTS = question_points(QUIZ)
TOTAL = sum(POINTS.values())


@pytest.fixture
def saved_quiz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A learner's saved quiz in a course folder, the kernel told its path as JupyterLab tells it."""
    right = solutions(QUIZ)
    notebook = tmp_path / f"{QUIZ}.ipynb"
    nbformat.write(submission(QUIZ, {**right, "q2_answer": "answer_q2 = 0.5 * 143 / 10"}), notebook)  # pounds used as kilograms
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    course = tmp_path / "course"
    course.mkdir()
    (course / "source").symlink_to(ROOT / "source")
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    monkeypatch.setattr("ketamine_course.grading.run.find_course_root", lambda start=None: course)
    monkeypatch.setattr(cells, "_LAST_RUN", {})
    return notebook


def test_the_score_and_each_question_s_feedback_appear_in_the_notebook(saved_quiz: Path, tmp_path: Path) -> None:
    shown = here.grade_here().data
    assert f"Your score: {TOTAL - POINTS['q2']} / {TOTAL}" in shown
    assert shown.count("<tr>") == 1 + len(POINTS) and f"✗ 0 / {POINTS['q2']}" in shown
    assert SLIPS["pounds_as_kg"] in shown, "the hidden test names the slip the answer shows"
    assert "<script" not in shown


def test_an_answer_run_but_not_saved_is_refused_with_save_first(saved_quiz: Path) -> None:
    nb = nbformat.read(saved_quiz, as_version=4)
    cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "q2_answer")
    cells._remember(SimpleNamespace(cell_id=cell.id, raw_cell=solutions(QUIZ)["q2_answer"]))  # the learner fixed q2 and ran it
    shown = here.grade_here().data
    assert "Not graded." in shown and "Save first" in shown and "q2_answer" in shown and "Your score" not in shown
    cell.source = solutions(QUIZ)["q2_answer"]
    nbformat.write(nb, saved_quiz)  # ... then saved
    assert f"Your score: {TOTAL} / {TOTAL}" in here.grade_here().data


def test_the_cell_does_nothing_while_the_quiz_itself_is_graded(saved_quiz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert "does nothing while the quiz is being graded" in here.grade_here().data


def test_grading_again_reuses_the_prepared_course(saved_quiz: Path) -> None:
    """The quiz's gradebook is made once, not at every grade (how long a grade takes is ./course bench's to measure)."""
    course = saved_quiz.parent / "course"

    def gradebooks() -> dict[Path, int]:
        return {path: path.stat().st_ino for path in course.rglob("gradebook.db")}

    here.grade_here()
    prepared = gradebooks()
    assert prepared, "the first grade prepares the quiz's gradebook"
    here.grade_here()
    assert gradebooks() == prepared, "the quiz's gradebook is made once, not at every grade"


def test_run_outside_jupyterlab_the_cell_says_how_to_grade_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert "./course grade" in here.grade_here().data


def test_the_kernel_side_s_grade_cell_hands_over_to_the_installed_grader(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quiz's grade cell (ketamine_course.quiz.grade_here) finds the grader by its entry point, and says so when none is."""
    from ketamine_course import quiz

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert "./course grade" in quiz.grade_here().data, "the grader's own answer outside JupyterLab"
    monkeypatch.setattr("importlib.metadata.entry_points", lambda **_: [])
    assert "No grader is installed" in quiz.grade_here().data


@pytest.mark.parametrize("cell", [
    "from ketamine_course.quiz import grade_here",  # the grade cell of the course's quizzes
    "from ketamine_course.grading.here import grade_here",  # an earlier release's, still in learners' copies
])
def test_the_grading_cell_costs_nothing_when_there_is_nothing_to_grade(cell: str) -> None:
    """Outside JupyterLab or while nbgrader grades the quiz, the last cell imports no grading machinery (it ran 1.7 s before)."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        f"{cell}\n"
        "grade_here()\n"
        "os.environ['NBGRADER_EXECUTION'] = 'autograde'\n"
        "grade_here()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nbgrader', 'sqlalchemy', 'nbconvert')))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("JPY_SESSION_NAME", "NBGRADER_EXECUTION")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_opening_the_course_prepares_every_quiz_and_a_quiz_s_first_cell_warms_the_grader(
    saved_quiz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """./course open prepares each quiz's gradebook (two preparations at once agree); the first cell loads the grader."""
    import subprocess
    import sys

    course = saved_quiz.parent / "course"
    runs = [subprocess.Popen([sys.executable, "-m", "ketamine_course.grading.here", "--prepare", str(course)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    caches = sorted(p.name.rsplit("-", 1)[0] for p in (course / ".grading-cache").iterdir())
    assert caches == sorted(q.name for q in (ROOT / "source").iterdir() if q.is_dir()), caches
    monkeypatch.setattr(here, "_WARMING", None)
    here.warm_up()
    assert here._WARMING is not None and here._WARMING.name == "ketamine-course-grader-warm-up"
    here._await_warm_up()
    assert "ketamine_course.grading.adapters.autograde" in sys.modules and "ketamine_course.pk" in sys.modules
    assert f"Your score: {TOTAL - POINTS['q2']} / {TOTAL}" in here.grade_here().data
