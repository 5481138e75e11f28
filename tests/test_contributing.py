"""CONTRIBUTING.md's "Adding a unit", followed to the letter in a fresh copy of the course, with the templates as they are."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from browser_helpers import clone_course
from ketamine_course.manifest import course_map
from places import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: the same on every Python


def _commands() -> list[str]:
    """The commands CONTRIBUTING.md gives for adding a unit, in its order."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- the commands tests/test_contributing.py runs, in this order -->\n```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None, "CONTRIBUTING.md lost its block of commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_adding_a_unit_as_contributing_md_says(tmp_path: Path) -> None:
    course = clone_course(tmp_path / "course")
    # the copy is the contributor's checkout: its own package and data (the shared .venv installs the original's)
    env = {**os.environ, "PYTHONPATH": str(course / "src"), "KETAMINE_COURSE_DATA": str(course / "data")}
    said: list[tuple[str, str]] = []
    for command in _commands():
        done = subprocess.run(command, shell=True, cwd=course, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        said.append((command, done.stdout))
    shared = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import ketamine_course; print(ketamine_course.__file__)"],
                            capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert shared.stdout.startswith(str(ROOT)), f"the steps re-pointed the shared environment at the copy: {shared.stdout}"
    check = next(out for command, out in said if "ketamine-grade check" in command)
    assert "no problems" in check and "8 (full marks)" in check, check

    lesson = course / "notebooks" / "06_interactions.ipynb"
    text = lesson.read_text(encoding="utf-8")
    assert "# Unit 6. Interactions: what other drugs do to ketamine" in text and "**Time:** 45 min" in text
    previous = (course / "notebooks" / "05_safety_regulation.ipynb").read_text(encoding="utf-8")
    assert "[Unit 6: Interactions](06_interactions.ipynb)" in previous, "the unit before links to the new one"
    start = (course / "notebooks" / "00_start_here.ipynb").read_text(encoding="utf-8")
    total_min = course_map().minutes + 45
    assert "Interactions: what other drugs do to ketamine" in start, "the start page's course map"
    assert f"**{total_min // 60} h {total_min % 60:02d} min**" in start, "the course map's total"
    readme = (course / "README.md").read_text(encoding="utf-8")
    assert "| `quiz06_interactions` | 6 | 8 |" in readme and "| `06_interactions.ipynb` |" in readme
    assert "](../../notebooks/06_interactions.ipynb)" in (course / "source" / "quiz06_interactions" / "quiz06_interactions.ipynb").read_text()
    released = nbformat.read(course / "release" / "quiz06_interactions" / "quiz06_interactions.ipynb", as_version=4)
    assert "BEGIN SOLUTION" not in nbformat.writes(released)

    site = course / "build" / "site"
    assert (site / "notebooks" / "06_interactions.html").is_file()
    assert "06_interactions.html" in (site / "notebooks" / "05_safety_regulation.html").read_text(encoding="utf-8")

    # the quiz rules refuse the template's placeholder questions until they are written
    rules = subprocess.run(
        [str(course / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_quiz_rules.py", "-k", "quiz06"],
        cwd=course, env=env, capture_output=True, text=True, timeout=300,
    )
    assert rules.returncode == 1 and "a template's placeholder is left" in rules.stdout, rules.stdout[-2000:]
