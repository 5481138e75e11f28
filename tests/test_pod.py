"""Zero to JupyterHub: in a pod where bubblewrap cannot start its cage, the grader refuses and says what the pod needs.

A pod without user namespaces (or with the runtime's masked ``/proc`` and
default seccomp profile) has bubblewrap installed, but every cage fails to
start. Stood in for by a ``bwrap`` that fails with the message bubblewrap
gives there, and ``KUBERNETES_SERVICE_HOST`` as Kubernetes sets it: class
grading (both commands) must refuse, naming the pod settings, and grade
nothing; a learner's own quiz is graded without the sandbox and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grading_helpers import ROOT, make_course, question_points, solutions, submission, submit
from ketamine_course.grading.review import is_hand_grading_copy
from places import path_without

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python
QUIZ = "quiz01_history"
BIN = Path(sys.executable).parent
BWRAP_IN_A_POD = "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces."


@pytest.fixture
def pod(tmp_path: Path) -> dict[str, str]:
    """The environment of a process in a pod whose bubblewrap cannot start a cage."""
    fake = tmp_path / "pod-bin"
    fake.mkdir()
    (fake / "bwrap").write_text(f"#!/bin/sh\necho '{BWRAP_IN_A_POD}' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    path = f"{BIN}{os.pathsep}{fake}{os.pathsep}{path_without(tmp_path / 'bin', 'bwrap')}"
    return {**os.environ, "PATH": path, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def _course(tmp_path: Path) -> Path:
    course = make_course(tmp_path / "class", QUIZ)
    submit(course, QUIZ, "ada", submission(QUIZ, solutions(QUIZ)))
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    return course


def test_class_grading_in_such_a_pod_refuses_and_names_the_pod_settings(tmp_path: Path, pod: dict[str, str]) -> None:
    course = _course(tmp_path)
    result = subprocess.run([str(BIN / "ketamine-grade"), "class", QUIZ], cwd=course, env=pod, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    for words in ("this pod does not let bubblewrap start a cage", BWRAP_IN_A_POD, "seccompProfile", "procMount: Unmasked", "hostUsers: false"):
        assert words in result.stderr, result.stderr
    assert not (course / "autograded").exists(), "nothing was graded"


def test_nbgrader_autograde_in_such_a_pod_grades_nobody(tmp_path: Path, pod: dict[str, str]) -> None:
    course = _course(tmp_path)
    result = subprocess.run([str(BIN / "nbgrader"), "autograde", QUIZ], cwd=course, env=pod, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "this pod does not let bubblewrap start a cage" in result.stdout + result.stderr
    written = list(course.glob("autograded/*/*/*.ipynb"))
    assert all(is_hand_grading_copy(path) for path in written), "no graded notebook was written (only copies to grade by hand)"


def test_doctor_in_such_a_pod_says_what_to_fix(pod: dict[str, str]) -> None:
    result = subprocess.run([str(BIN / "ketamine-grade"), "doctor"], cwd=ROOT, env=pod, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "a Kubernetes pod" in result.stdout and "FIX Sandbox:" in result.stdout and "procMount: Unmasked" in result.stdout


def test_a_learners_own_quiz_in_such_a_pod_is_graded_without_the_sandbox_and_says_why(tmp_path: Path, pod: dict[str, str]) -> None:
    answered = tmp_path / "mine.ipynb"
    import nbformat

    nbformat.write(submission(QUIZ, solutions(QUIZ)), answered)
    result = subprocess.run([str(BIN / "ketamine-grade"), "self", QUIZ, str(answered)], cwd=ROOT, env=pod,
                            capture_output=True, text=True, timeout=300, check=False)
    total = sum(question_points(QUIZ).values())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{total} / {total} points" in result.stdout
    assert "graded without the sandbox (bubblewrap cannot start its cage here)" in result.stderr
