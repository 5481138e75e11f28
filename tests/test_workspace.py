"""The learner's work folder: seeded from the course, never overwritten (``ketamine_course.workspace``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ketamine_course.workspace import MANIFEST, course_files, main, seed

ROOT = Path(__file__).resolve().parents[1]


def _course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    for folder in ("notebooks", "release"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return course


def test_first_open_copies_every_lesson_and_quiz(tmp_path: Path) -> None:
    course = _course(tmp_path)
    report = seed(course, course / "work")
    assert report.copied == course_files(course)
    assert {p.split("/")[0] for p in report.copied} == {"notebooks", "release"}
    for relative in report.copied:
        assert (course / "work" / relative).read_bytes() == (course / relative).read_bytes()
    # The course map's quiz links (../release/...) resolve inside the served folder.
    assert (course / "work" / "notebooks" / "../release/quiz03_pharmacokinetics/quiz03_pharmacokinetics.ipynb").resolve().is_file()


def test_reopening_changes_nothing_and_says_nothing(tmp_path: Path) -> None:
    course = _course(tmp_path)
    seed(course, course / "work")
    report = seed(course, course / "work")
    assert report.lines() == []


def test_an_update_reaches_untouched_copies_and_never_an_edited_one(tmp_path: Path) -> None:
    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    lesson, quiz = "notebooks/01_history.ipynb", "release/quiz01_history/quiz01_history.ipynb"
    (work / quiz).write_text("my answers")
    (course / lesson).write_bytes((course / lesson).read_bytes() + b"\n")  # the course updates both
    (course / quiz).write_bytes((course / quiz).read_bytes() + b"\n")
    report = seed(course, work)
    assert report.updated == [lesson]
    assert report.kept == [quiz]
    assert (work / quiz).read_text() == "my answers"
    assert (work / lesson).read_bytes() == (course / lesson).read_bytes()
    assert any("your copy is kept" in line for line in report.lines())
    # Still kept on the next open, and a deleted copy comes back fresh.
    assert seed(course, work).kept == [quiz]
    (work / quiz).unlink()
    assert seed(course, work).copied == [quiz]


def test_a_damaged_manifest_never_costs_the_learner_their_work(tmp_path: Path) -> None:
    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    quiz = "release/quiz02_mechanism/quiz02_mechanism.ipynb"
    (work / quiz).write_text("my answers")
    (work / MANIFEST).write_text("{not json")
    (course / quiz).write_bytes((course / quiz).read_bytes() + b"\n")
    assert seed(course, work).kept == [quiz]
    assert (work / quiz).read_text() == "my answers"


def test_the_command_refuses_a_folder_that_is_not_the_course(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path), str(tmp_path / "work")]) == 2
    assert "run this from the course folder" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
