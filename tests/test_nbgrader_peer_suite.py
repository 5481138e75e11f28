"""nbgrader's own autograde and feedback tests, run against the course's grading pipeline.

The tests ship in nbgrader's wheel (the version ``requirements.lock`` pins).
They run here in a separate pytest process with the course's pipeline
injected the way an instructor's setup would have it: a user-level
``nbgrader_config.py`` (on ``JUPYTER_CONFIG_PATH``) that calls
:func:`ketamine_course.grading.config.apply_pipeline`. Every test must pass
except the documented, deliberate differences below, each a security choice
also named in the README.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DELIBERATE_DIFFERENCES = {
    "test_side_effects": "files a student's kernel writes never come back into autograded/: the kernel works in a private folder of its own",
    "test_handle_failure": "a submitted notebook whose cells carry nbgrader ids the quiz does not have is graded as far as possible (those cells as ordinary cells) and flagged, not failed",
    "test_handle_failure_single_notebook": "the same, for one notebook of an assignment",
    "test_missing_files": "an empty submission folder is flagged for review and makes autograde exit non-zero; nbgrader skips it with a warning",
    "test_missing_source_kernelspec": "a submission that could not be graded is left in autograded/ as a hand-grading copy (the quiz as released, the answers as text), so the formgrader's Manual Grading lists it; nbgrader leaves nothing there",
    "test_incorrect_source_kernelspec": "the same, when the quiz's own kernel is missing (the next autograde grades it again once that is fixed)",
}
"""nbgrader tests the course fails on purpose, and why."""


def test_nbgrader_s_own_autograde_and_feedback_tests_pass_on_the_course_pipeline(tmp_path: Path, sandbox: bool) -> None:
    import nbgrader

    tests = Path(nbgrader.__file__).parent / "tests" / "apps"
    config = tmp_path / "config"
    config.mkdir()
    (config / "nbgrader_config.py").write_text(
        "from ketamine_course.grading.config import apply_pipeline\n"
        "c = get_config()\n"
        "apply_pipeline(c)\n"
        f"c.BoundedExecute.sandbox = {sandbox!r}\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(config), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    deselect = " and ".join(f"not {name}" for name in DELIBERATE_DIFFERENCES)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests / "test_nbgrader_autograde.py"), str(tests / "test_nbgrader_generate_feedback.py"),
         "-p", "no:cacheprovider", "-q", "-o", "addopts=", "-rf", "-k", deselect],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


def test_the_deliberate_differences_still_differ(tmp_path: Path, sandbox: bool) -> None:
    """Each documented difference is real: that nbgrader test does fail on the course's pipeline (or the list is stale)."""
    import nbgrader

    tests = Path(nbgrader.__file__).parent / "tests" / "apps"
    config = tmp_path / "config"
    config.mkdir()
    (config / "nbgrader_config.py").write_text(
        f"from ketamine_course.grading.config import apply_pipeline\nc = get_config()\napply_pipeline(c)\nc.BoundedExecute.sandbox = {sandbox!r}\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(config), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests / "test_nbgrader_autograde.py"), "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         "-k", " or ".join(DELIBERATE_DIFFERENCES)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 1 and f"{len(DELIBERATE_DIFFERENCES)} failed" in result.stdout, result.stdout[-3000:]
    # -k matches substrings: test_handle_failure also selects test_handle_failure_single_notebook, counted once above
