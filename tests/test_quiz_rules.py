"""The course map (data/course.toml) and the rules every quiz follows, checked in the fast suite."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from ketamine_course.manifest import ManifestError, course_map, read_course_map, readme_with_tables, units
from places import ROOT

RULES = course_map().quiz_rules
QUIZZES = [unit.quiz for unit in units()]


def _source(quiz: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "source" / quiz / f"{quiz}.ipynb", as_version=4)


def _points(nb: nbformat.NotebookNode) -> list[float]:
    return [float(c.metadata["nbgrader"]["points"]) for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def test_the_course_s_quizzes_and_lessons_are_the_map_s() -> None:
    assert sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir()) == sorted(QUIZZES)
    assert sorted(p.name for p in (ROOT / "release").iterdir() if p.is_dir()) == sorted(QUIZZES)
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert lessons == sorted([course_map().start] + [unit.notebook for unit in units()])


@pytest.mark.parametrize("quiz", QUIZZES)
def test_each_quiz_follows_the_rules(quiz: str) -> None:
    nb = _source(quiz)
    points = _points(nb)
    assert RULES.min_questions <= len(points) <= RULES.max_questions, f"{len(points)} questions"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    headings = re.findall(r"^## Question (\d+) \((\w+), (\d+) points?\)", markdown, re.MULTILINE)
    assert [int(n) for n, _, _ in headings] == list(range(1, len(points) + 1)), "questions numbered 1, 2, 3... each with its level and points"
    assert {level for _, level, _ in headings} == set(RULES.levels), "every level of the rules, and no other"
    assert [float(p) for _, _, p in headings] == points, "each heading's points are its test cell's"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not [name for name in RULES.not_imported if name in code], "a graded notebook imports only what it needs"
    intro = nb.cells[0].source
    assert f"{len(points)} questions, {sum(points):g} points" in intro, "the first cell gives the count and the total"
    assert f"ketamine-grade self {quiz}" in intro, "the first cell says how a self-learner gets the quiz graded"
    lesson = next(unit.notebook for unit in units() if unit.quiz == quiz)
    assert f"](../../notebooks/{lesson})" in intro, "the first cell links the quiz's own lesson"
    setup = nb.cells[1]
    assert setup.metadata["nbgrader"]["grade_id"] == "setup" and "track_cells()" in setup.source
    assert nb.cells[-1].get("id") == "grade-here" and nb.cells[-1].source.startswith("from ketamine_course.quiz import grade_here")
    assert "{{" not in nb.cells[0].source + markdown and "TEMPLATE" not in markdown, "a template's placeholder is left"


def test_the_readme_s_tables_are_the_map_s() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_tables(text, ROOT) == text, "run: .venv/bin/python -m ketamine_course.manifest readme"


def test_a_drifted_readme_table_is_seen() -> None:
    """Control: the README as it was before the map (quiz03 listed with 8 questions and 15 points) is out of date."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    drifted = re.sub(r"\| `quiz03_pharmacokinetics` \| \d+ \| \d+ \|", "| `quiz03_pharmacokinetics` | 8 | 15 |", text)
    assert drifted != text and readme_with_tables(drifted, ROOT) == text


@pytest.mark.parametrize(("change", "said"), [
    ("number = 2", "its number is 2; units are numbered 1, 2, 3"),
    ('lesson = "1_history.ipynb"', "must be named 01_<name>.ipynb"),
    ('quiz = "history"', "must be named quiz01_<name>"),
    ("minutes = 0", "a unit takes 5 to 240 minutes"),
    ('title = 3', "'title' must be text"),
])
def test_a_wrong_course_map_is_refused_in_words(tmp_path: Path, change: str, said: str) -> None:
    text = (ROOT / "data" / "course.toml").read_text(encoding="utf-8")
    key = change.split(" = ")[0]
    first = re.search(rf"^{key} = .*$", text, re.MULTILINE)
    assert first is not None
    broken = tmp_path / "course.toml"
    broken.write_text(text[: first.start()] + change + text[first.end():], encoding="utf-8")
    with pytest.raises(ManifestError, match=re.escape(said)):
        read_course_map(broken)
