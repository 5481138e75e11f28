"""The course map (``data/course.toml``): its units, lessons, quizzes and times, and the rules every quiz follows.

Everything that lists units or quizzes derives from this file: the start
page's course map and each lesson's links (:mod:`ketamine_course.lesson`), the
site's reading order (:mod:`ketamine_course.site`), the README's tables
(``python -m ketamine_course.manifest readme``) and the tests. To add a unit,
see ``CONTRIBUTING.md`` (``python -m ketamine_course.manifest add-unit``).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import data_dir

__all__ = [
    "Unit", "QuizRules", "CourseMap", "ManifestError", "course_map", "units", "quiz_rules", "read_course_map",
    "readme_tables", "add_unit",
]

MANIFEST = "course.toml"
"""The course map's file name, in ``data/``."""


class ManifestError(ValueError):
    """The course map says something that cannot be: which entry, and what is wrong, in words."""


@dataclass(frozen=True)
class Unit:
    """One unit of the course: its lesson and its quiz."""

    number: int
    title: str
    minutes: int
    notebook: str
    quiz: str
    summary: str = ""

    @property
    def quiz_path(self) -> str:
        """The student version of the quiz, relative to ``notebooks/``."""
        return f"../release/{self.quiz}/{self.quiz}.ipynb"


@dataclass(frozen=True)
class QuizRules:
    """What every quiz of the course follows."""

    min_questions: int
    max_questions: int
    levels: tuple[str, ...]
    not_imported: tuple[str, ...]


@dataclass(frozen=True)
class CourseMap:
    """The whole map: the start page, the units in order, the quiz rules."""

    start: str
    start_summary: str
    units: tuple[Unit, ...]
    quiz_rules: QuizRules

    @property
    def minutes(self) -> int:
        """The whole course's time."""
        return sum(unit.minutes for unit in self.units)


_LESSON = re.compile(r"\d\d_[a-z0-9_]+\.ipynb")
_QUIZ = re.compile(r"quiz\d\d_[a-z0-9_]+")


def _field(entry: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = entry.get(name)
    if type(value) is not kind:
        wanted = {int: "a whole number", str: "text", list: "a list"}[kind]
        raise ManifestError(f"{where}: '{name}' must be {wanted}" + ("" if value is None else f" (it is {value!r})"))
    return value


def _unit(entry: dict[str, Any], position: int) -> Unit:
    where = f"data/{MANIFEST}, unit {position}"
    number = _field(entry, "number", int, where)
    if number != position:
        raise ManifestError(
            f"{where}: its number is {number}; units are numbered 1, 2, 3... in the order they are listed"
        )
    lesson, quiz = _field(entry, "lesson", str, where), _field(entry, "quiz", str, where)
    if not _LESSON.fullmatch(lesson) or not lesson.startswith(f"{number:02d}_"):
        raise ManifestError(
            f"{where}: lesson {lesson!r} must be named {number:02d}_<name>.ipynb (lower case, digits, _)"
        )
    if not _QUIZ.fullmatch(quiz) or not quiz.startswith(f"quiz{number:02d}_"):
        raise ManifestError(f"{where}: quiz {quiz!r} must be named quiz{number:02d}_<name> (lower case, digits, _)")
    minutes = _field(entry, "minutes", int, where)
    if not 5 <= minutes <= 240:
        raise ManifestError(f"{where}: {minutes} minutes; a unit takes 5 to 240 minutes")
    summary = entry.get("summary", "")
    return Unit(
        number, _field(entry, "title", str, where), minutes, lesson, quiz, summary if isinstance(summary, str) else ""
    )


def read_course_map(path: Path) -> CourseMap:
    """Read and check a course map file (:class:`ManifestError` says what is wrong)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path.name} is not valid TOML: {error}") from None
    entries = raw.get("units")
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path.name} lists no units ([[units]] entries)")
    units = tuple(_unit(entry, position) for position, entry in enumerate(entries, start=1))
    for kind in ("lesson", "quiz"):
        names = [getattr(u, "notebook" if kind == "lesson" else "quiz") for u in units]
        if len(set(names)) != len(names):
            raise ManifestError(f"{path.name}: two units share a {kind}")
    rules = raw.get("quiz_rules", {})
    where = f"{path.name}, [quiz_rules]"
    quiz_rules = QuizRules(
        _field(rules, "min_questions", int, where), _field(rules, "max_questions", int, where),
        tuple(_field(rules, "levels", list, where)), tuple(_field(rules, "not_imported", list, where)),
    )
    start = _field(raw, "start", str, path.name)
    return CourseMap(start, str(raw.get("start_summary", "")), units, quiz_rules)


@functools.cache
def course_map() -> CourseMap:
    """The course's own map (``data/course.toml``, in the checkout or the installed package)."""
    return read_course_map(data_dir() / MANIFEST)


def units() -> tuple[Unit, ...]:
    """The course's units, in order."""
    return course_map().units


def quiz_rules() -> QuizRules:
    """The rules every quiz of the course follows."""
    return course_map().quiz_rules


# --------------------------------------------------------------------------
# The README's tables
# --------------------------------------------------------------------------


def _quiz_questions(root: Path, quiz: str) -> tuple[int, float]:
    """(questions, points) of a quiz, from its instructor version: the points live in its test cells, nowhere else."""
    import nbformat

    nb = nbformat.read(root / "source" / quiz / f"{quiz}.ipynb", as_version=4)
    points = [
        float(c.metadata["nbgrader"].get("points", 0))
        for c in nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    ]
    return len(points), sum(points)


def readme_tables(root: Path) -> dict[str, str]:
    """The README's generated tables by name (``lessons``, ``quizzes``), as Markdown."""
    plan = course_map()
    lessons = ["| notebook | unit |", "|---|---|", f"| `{plan.start}` | {plan.start_summary} |"]
    lessons += [f"| `{u.notebook}` | {u.summary} |" for u in plan.units]
    quizzes = ["| quiz | questions | points |", "|---|---|---|"]
    for unit in plan.units:
        count, points = _quiz_questions(root, unit.quiz)
        quizzes.append(f"| `{unit.quiz}` | {count} | {points:g} |")
    return {"lessons": "\n".join(lessons), "quizzes": "\n".join(quizzes)}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} .*?-->\n)(.*?)(\n<!-- end: {name} -->)", re.DOTALL)


def readme_with_tables(text: str, root: Path) -> str:
    """The README's text with each generated table written anew between its markers."""
    for name, table in readme_tables(root).items():
        match = _block(name).search(text)
        if match is None:
            raise ManifestError(f"README.md has no '<!-- generated: {name} ... -->' marker")
        text = text[: match.start(2)] + table + text[match.end(2):]
    return text


# --------------------------------------------------------------------------
# Adding a unit
# --------------------------------------------------------------------------


def add_unit(root: Path, slug: str, title: str, minutes: int) -> Unit:
    """Add a unit at the end of the course: its lesson and quiz made from the templates, its entry in the course map.

    Writes ``notebooks/NN_<slug>.ipynb``, ``source/quizNN_<slug>/quizNN_<slug>.ipynb``
    (from ``templates/``) and appends the unit to ``data/course.toml``; the
    author then writes them (``CONTRIBUTING.md``). Nothing is overwritten.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,30}", slug):
        raise ManifestError(
            f"the unit's short name {slug!r} must be lower case letters, digits and _ (e.g. interactions)"
        )
    manifest = root / "data" / MANIFEST
    plan = read_course_map(manifest)
    number = len(plan.units) + 1
    unit = Unit(number, title, minutes, f"{number:02d}_{slug}.ipynb", f"quiz{number:02d}_{slug}")
    lesson = root / "notebooks" / unit.notebook
    quiz = root / "source" / unit.quiz / f"{unit.quiz}.ipynb"
    for path in (lesson, quiz.parent):
        if path.exists():
            raise ManifestError(f"{path.relative_to(root)} already exists; nothing was changed")
    quiz.parent.mkdir(parents=True)
    placeholders = {"UNIT_NUMBER": str(number), "UNIT_TITLE": title, "QUIZ_NAME": unit.quiz, "LESSON": unit.notebook}
    for template, target in ((root / "templates" / "lesson.ipynb", lesson), (root / "templates" / "quiz.ipynb", quiz)):
        text = template.read_text(encoding="utf-8")
        for key, value in placeholders.items():
            text = text.replace(f"{{{{{key}}}}}", json.dumps(value)[1:-1])  # inside a JSON string of the notebook
        target.write_text(text, encoding="utf-8")
    entry = (  # TOML basic strings take JSON's escapes
        f"\n[[units]]\nnumber = {number}\ntitle = {json.dumps(title)}\n"
        f"minutes = {minutes}\nlesson = \"{unit.notebook}\"\n"
        f"quiz = \"{unit.quiz}\"\nsummary = {json.dumps(title)}  # what the README's lesson table says of it\n"
    )
    text = manifest.read_text(encoding="utf-8")
    at = text.index("\n# What every quiz") if "\n# What every quiz" in text else text.index("\n[quiz_rules]")
    manifest.write_text(text[:at].rstrip("\n") + "\n" + entry + text[at:], encoding="utf-8")
    read_course_map(manifest)  # the map as written still reads
    return unit


def main(argv: list[str] | None = None) -> int:
    """``python -m ketamine_course.manifest readme`` / ``add-unit SLUG TITLE MINUTES`` (from the course folder)."""
    parser = argparse.ArgumentParser(prog="python -m ketamine_course.manifest", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("readme", help="write the README's tables anew from the course map and the quizzes")
    new = commands.add_parser(
        "add-unit", help="add a unit at the end: its lesson and quiz from templates/, its entry in data/course.toml"
    )
    new.add_argument("slug", help="short name, lower case (e.g. interactions)")
    new.add_argument("title", help="the unit's title")
    new.add_argument("minutes", type=int, help="the time the lesson takes, in minutes")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        if args.command == "readme":
            readme = root / "README.md"
            readme.write_text(readme_with_tables(readme.read_text(encoding="utf-8"), root), encoding="utf-8")
            print("README.md: tables written from data/course.toml")
        else:
            unit = add_unit(root, args.slug, args.title, args.minutes)
            course_map.cache_clear()
            print(
                f"added unit {unit.number}: notebooks/{unit.notebook}, source/{unit.quiz}/ "
                "(see CONTRIBUTING.md for what next)"
            )
    except (ManifestError, FileNotFoundError) as problem:
        print(f"manifest: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
