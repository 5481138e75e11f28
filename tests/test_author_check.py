"""The author's check (ketamine-grade check): every quiz grades what its author means, and a faulty quiz is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grading_helpers import QUIZZES, ROOT
from ketamine_course.grading.check import author_check, check_text

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("quiz", QUIZZES)
def test_every_quiz_passes_the_author_s_check(quiz: str, sandbox: bool) -> None:
    lines = author_check(ROOT, quiz, sandbox=sandbox)
    assert all(line.ok for line in lines), check_text(quiz, lines)
    assert {line.copy for line in lines} >= {"solution", "blank"} and len(lines) > 4


def _faulty_course(tmp_path: Path, quiz: str, change) -> Path:
    course = tmp_path / "course"
    shutil.copytree(ROOT / "source" / quiz, course / "source" / quiz)
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    path = course / "source" / quiz / f"{quiz}.ipynb"
    nb = json.loads(path.read_text())
    change(nb)
    path.write_text(json.dumps(nb))
    return course


def _q1_test_becomes(source: str):
    """A change of the quiz: its q1_test cell holds ``source``."""

    def change(nb: dict) -> None:
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "q1_test")
        cell["source"] = source

    return change


def test_a_test_that_gives_blank_work_points_is_caught(tmp_path: Path, sandbox: bool) -> None:
    """An instructor's partial-credit cell that always ends in 1: blank work would earn a point."""
    quiz = QUIZZES[0]
    always_one = _q1_test_becomes("### BEGIN HIDDEN TESTS\n1\n### END HIDDEN TESTS")
    lines = author_check(_faulty_course(tmp_path, quiz, always_one), quiz, sandbox=sandbox)
    problems = [line.copy for line in lines if not line.ok]
    assert "blank" in problems and "q1_answer wrong" in problems, check_text(quiz, lines)
    blank = next(line for line in lines if line.copy == "blank")
    assert "q1_test 1/1 (still earns points with this answer wrong)" in blank.detail, blank.detail


def test_a_hidden_test_the_judge_would_refuse_is_reported(tmp_path: Path) -> None:
    quiz = QUIZZES[0]
    uses_globals = _q1_test_becomes("### BEGIN HIDDEN TESTS\nassert globals()['answer_q1'] == 'B'\n### END HIDDEN TESTS")
    lines = author_check(_faulty_course(tmp_path, quiz, uses_globals), quiz)
    assert len(lines) == 1 and not lines[0].ok and "q1_test" in lines[0].detail and "globals()" in lines[0].detail


def test_a_check_that_recognises_a_wrong_value_is_reported(tmp_path: Path, sandbox: bool) -> None:
    """A visible check naming a slip by fingerprint (as earlier releases did) lets a student search for the slip's value: reported."""
    quiz = "quiz05_safety"

    def fingerprinted(nb: dict) -> None:
        cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "q1_test")
        source = "".join(cell["source"])
        cell["source"] = source.replace('scale_slips={"percent_not_fraction": 0.01}', 'slips={"percent_not_fraction": "82"}')
        assert cell["source"] != source

    lines = author_check(_faulty_course(tmp_path, quiz, fingerprinted), quiz, sandbox=sandbox)
    problems = [line for line in lines if not line.ok]
    assert [line.copy for line in problems] == ["q1_test"], check_text(quiz, lines)
    assert "grade_number(..., slips=" in problems[0].detail


def test_the_check_says_which_test_failed_for_which_copy_and_why(tmp_path: Path, sandbox: bool) -> None:
    """A hidden test that rejects the author's own solution: the check names the test, its line, and the values compared."""
    quiz = QUIZZES[0]
    expects_c = _q1_test_becomes("### BEGIN HIDDEN TESTS\nimport numpy as np\nnp.testing.assert_equal(answer_q1, 'C')\n### END HIDDEN TESTS")
    lines = author_check(_faulty_course(tmp_path, quiz, expects_c), quiz, sandbox=sandbox)
    solution = next(line for line in lines if line.copy == "solution")
    assert not solution.ok, check_text(quiz, lines)
    assert "q1_test 0/" in solution.detail and "hidden line 2" in solution.detail, solution.detail
    assert "np.testing.assert_equal(answer_q1, 'C')" in solution.detail and "'B'" in solution.detail and "'C'" in solution.detail
    assert "q2_test" not in solution.detail, "only the test that failed is named"
