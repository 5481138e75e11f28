"""The course as installed, not as checked out: the wheel holds everything it needs, and grades from any folder.

Binder and any ``pip install`` get the wheel, never the editable checkout the
rest of the suite runs. Here the wheel is built, listed against what the
package needs at run time, and installed (not editable) into a fresh virtual
environment under the system's temporary folder; a copy of the course without
``src/`` (so the package can only come from the wheel), in a folder whose
path has a space, then grades a learner's quiz with the installed
``ketamine-grade``, sandboxed and without bubblewrap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from grading_helpers import ROOT, question_points, solutions, submission
from places import path_without, tracked_copy

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python

QUIZ = "quiz01_history"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the files a clone has (a working tree's own build can differ: its leftovers, its caches)."""
    out, clone = tmp_path_factory.mktemp("wheel"), tracked_copy(tmp_path_factory.mktemp("clone"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", str(out), str(clone)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("ketamine_course-*.whl")
    return found


def _needed_at_run_time() -> set[str]:
    """Every file the package needs installed: its tracked files under src/, and the data tables (bundled as ketamine_course/data)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "src/ketamine_course", "data"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    needed = set()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            needed.add(name.removeprefix("src/") if name.startswith("src/") else f"ketamine_course/{name}")
    return needed


def test_the_wheel_holds_every_file_the_course_needs_at_run_time(wheel: Path) -> None:
    names = {n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("/") and ".dist-info/" not in n}
    needed = _needed_at_run_time()
    assert "ketamine_course/grading/templates/feedback/feedback_safe.html.j2" in needed
    assert "ketamine_course/data/references.csv" in needed
    assert needed - names == set(), f"missing from the wheel: {sorted(needed - names)}"
    assert names - needed == set(), f"in the wheel but not the package's: {sorted(names - needed)}"


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Iterator[dict[str, Path]]:
    """The wheel with the course's runtime dependencies (the lock's versions) in a fresh venv, and a copy of the course without src/."""
    with tempfile.TemporaryDirectory(prefix="ketamine installed ", dir="/tmp") as scratch:
        base = Path(scratch)
        env, course = base / "venv", base / "my course"
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        done = subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
             "--constraint", str(ROOT / "requirements.lock"), f"{wheel}[course]"],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        tracked_copy(course, exclude=("src/",))
        answered = course / "my answers.ipynb"
        nbformat.write(submission(QUIZ, solutions(QUIZ)), answered)
        yield {"env": env, "course": course, "answered": answered, "base": base}


def _grade(installed: dict[str, Path], path: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environment.update(PATH=path, TMPDIR=str(installed["base"]))
    return subprocess.run(
        [str(installed["env"] / "bin" / "ketamine-grade"), "self", QUIZ, str(installed["answered"])],
        cwd=installed["course"], env=environment, capture_output=True, text=True, timeout=600, check=False,
    )


def test_the_installed_package_is_not_the_checkout(installed: dict[str, Path]) -> None:
    where = subprocess.run([str(installed["env"] / "bin" / "python"), "-c", "import ketamine_course; print(ketamine_course.__file__)"],
                           cwd=installed["course"], capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(installed["env"]), where


def test_the_installed_package_grades_a_quiz_in_the_sandbox_from_a_folder_under_tmp(installed: dict[str, Path], sandbox: bool) -> None:
    if not sandbox:
        pytest.skip("bubblewrap is not installed here")
    run = _grade(installed, os.environ["PATH"])
    total = sum(question_points(QUIZ).values())
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{QUIZ}: {total:g} / {total:g} points" in run.stdout, run.stdout + run.stderr
    assert "without the sandbox" not in run.stdout + run.stderr
    page = installed["course"] / "feedback" / f"{QUIZ}.html"
    assert page.is_file() and "Content-Security-Policy" in page.read_text()


def test_the_installed_package_grades_a_quiz_without_bubblewrap_and_says_so(installed: dict[str, Path], tmp_path: Path) -> None:
    run = _grade(installed, path_without(tmp_path / "bin", "bwrap"))
    total = sum(question_points(QUIZ).values())
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{QUIZ}: {total:g} / {total:g} points" in run.stdout, run.stdout + run.stderr
    assert "graded without the sandbox" in run.stderr
