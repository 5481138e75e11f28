"""A class graded from any folder: the course and the temporary folder under /tmp, with spaces in their paths.

Both instructor commands (``ketamine-grade class`` and ``nbgrader
autograde``) run as commands in a course whose folder, and whose ``TMPDIR``,
live under ``/tmp`` and have spaces in their names (a CI runner's workspace, a
scratch clone, a container). A submission whose kernel cannot start (a module
of the student's named like the one that starts the kernel) is named with the
kernel's own last words, escaped, and flagged; the rest of the class is
graded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, make_course, question_points, solutions, submission, submit
from ketamine_course.grading.config import COURSE_ID

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python
QUIZ = "quiz01_history"
BIN = Path(sys.executable).parent
SHADOW = "import sys\nprint('\\x1b[31mthis launcher is the student\\'s own', file=sys.stderr)\nraise SystemExit(3)\n"


@pytest.fixture(scope="module")
def odd_place(sandbox: bool) -> Iterator[dict[str, Path]]:
    if not sandbox:
        pytest.skip("the instructor's commands refuse to grade without the sandbox")
    base = Path(tempfile.mkdtemp(prefix="ketamine any folder ", dir="/tmp"))
    try:
        course = make_course(base / "a class", QUIZ)
        submit(course, QUIZ, "ada", submission(QUIZ, solutions(QUIZ)))
        submit(course, QUIZ, "ben", submission(QUIZ, solutions(QUIZ)))
        (course / "submitted" / "ben" / QUIZ / "ipykernel_launcher.py").write_text(SHADOW)
        (course / "nbgrader_config.py").write_text(
            f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
            f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"
            "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
        )
        temporary = base / "tmp dir"
        temporary.mkdir()
        yield {"base": base, "course": course, "tmp": temporary}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _fresh(place: dict[str, Path], name: str) -> Path:
    target = place["base"] / name
    shutil.copytree(place["course"], target, symlinks=True)
    text = (target / "nbgrader_config.py").read_text().replace(str(place["course"]), str(target))
    (target / "nbgrader_config.py").write_text(text)
    return target


def _run(command: list[str], course: Path, place: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(place["tmp"])}
    return subprocess.run(command, cwd=course, env=environment, capture_output=True, text=True, timeout=900, check=False)


def _check(course: Path, output: str) -> None:
    total = sum(question_points(QUIZ).values())
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        assert gradebook.find_submission(QUIZ, "ada").score == total, output
        ben = gradebook.find_submission(QUIZ, "ben")
        assert any(nb.flagged for nb in ben.notebooks), output
        comments = {c.comment for nb in ben.notebooks for c in nb.comments if c.comment}
    (comment,) = comments
    assert "the grading kernel could not start" in comment and "this launcher is the student's own" in comment, comment
    assert "\x1b" not in comment and "\\x1b" in comment, "what the kernel wrote is shown escaped"
    assert "could not start" in output and "\x1b" not in output


def test_ketamine_grade_class_grades_from_folders_with_spaces_under_tmp(odd_place: dict[str, Path]) -> None:
    course = _fresh(odd_place, "class run")
    result = _run([str(BIN / "ketamine-grade"), "class", QUIZ, "--jobs", "2"], course, odd_place)
    assert result.returncode == 1, result.stdout + result.stderr
    _check(course, result.stdout + result.stderr)
    assert not list(odd_place["tmp"].glob("ketamine-kernel-*")), "no kernel folder is left in the temporary folder"


def test_nbgrader_autograde_grades_from_folders_with_spaces_under_tmp(odd_place: dict[str, Path]) -> None:
    course = _fresh(odd_place, "nbgrader run")
    result = _run([str(BIN / "nbgrader"), "autograde", QUIZ], course, odd_place)
    assert result.returncode != 0, result.stdout + result.stderr
    _check(course, result.stdout + result.stderr)
    assert not list(odd_place["tmp"].glob("ketamine-kernel-*"))
