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


def _update_text(path: Path) -> None:
    """What a course update does: change a notebook's text."""
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = ["# Updated\n"] + nb["cells"][0]["source"]
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


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


def test_answering_a_quiz_is_never_reported_as_a_course_update(tmp_path: Path) -> None:
    """Reopening after answering, with the course unchanged, says nothing (it used to say 'the course has a newer
    version; rename yours')."""
    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    quiz = "release/quiz03_pharmacokinetics/quiz03_pharmacokinetics.ipynb"
    import json

    nb = json.loads((work / quiz).read_text(encoding="utf-8"))
    nb["cells"][-1]["source"] = ["answer_q1 = 35.0\n"]  # the learner's answers change the text
    (work / quiz).write_text(json.dumps(nb, indent=1), encoding="utf-8")
    for _ in range(2):
        report = seed(course, work)
        assert report.kept == [] and report.lines() == [], report.lines()
    _update_text(course / quiz)  # control: a real course update is still reported
    assert seed(course, work).kept == [quiz]


def test_an_update_reaches_untouched_copies_and_never_an_edited_one(tmp_path: Path) -> None:
    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    lesson, quiz = "notebooks/01_history.ipynb", "release/quiz01_history/quiz01_history.ipynb"
    (work / quiz).write_text("my answers")
    _update_text(course / lesson)  # the course updates both
    _update_text(course / quiz)
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


def test_running_and_saving_a_lesson_is_not_an_edit_but_changing_its_text_is(tmp_path: Path) -> None:
    import json

    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    ran, edited = "notebooks/02_nmda_mechanism.ipynb", "notebooks/03_pharmacokinetics.ipynb"
    for relative, change in ((ran, "outputs"), (edited, "source")):
        nb = json.loads((work / relative).read_text(encoding="utf-8"))
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        if change == "outputs":  # what Run All and a save do
            code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
            code["execution_count"] = 1
            nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.2"}
        else:  # what a learner's note or answer does
            code["source"] = ["# my note\n"] + code["source"]
        (work / relative).write_text(json.dumps(nb), encoding="utf-8")
        _update_text(course / relative)
    report = seed(course, work)
    assert report.updated == [ran]
    assert report.kept == [edited]
    assert "# my note" in (work / edited).read_text(encoding="utf-8")


def test_a_damaged_manifest_never_costs_the_learner_their_work(tmp_path: Path) -> None:
    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    quiz = "release/quiz02_mechanism/quiz02_mechanism.ipynb"
    (work / quiz).write_text("my answers")
    (work / MANIFEST).write_text("{not json")
    _update_text(course / quiz)
    assert seed(course, work).kept == [quiz]
    assert (work / quiz).read_text() == "my answers"


def test_the_command_refuses_a_folder_that_is_not_the_course(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path), str(tmp_path / "work")]) == 2
    assert "run this from the course folder" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_every_link_in_the_lessons_and_quizzes_opens_a_notebook_in_the_work_folder(tmp_path: Path) -> None:
    """JupyterLab serves only work/: a link that leaves it, or points nowhere, does nothing for the learner."""
    import json
    import re

    course = _course(tmp_path)
    work = course / "work"
    seed(course, work)
    checked = 0
    for relative in course_files(course):
        notebook = work / relative
        text = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
            if re.match(r"^[a-z]+:|^#", target):
                continue  # a web address or an anchor
            resolved = (notebook.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(work.resolve()), f"{relative}: {target} leaves the work folder"
            assert resolved.is_file(), f"{relative}: {target} points nowhere"
            checked += 1
    assert checked >= 2 * 5 + 5 + 5  # each unit links its quiz twice, the map links every lesson and quiz


def test_a_git_pull_of_a_course_update_keeps_the_learners_answers(tmp_path: Path) -> None:
    """The learner's clone: answers in work/, the course updated upstream, git pull, open again."""
    import json
    import subprocess
    import sys

    from browser_helpers import clone_course, git_status

    def git(folder: Path, *args: str) -> None:
        subprocess.run(["git", "-C", str(folder), "-c", "user.name=course", "-c", "user.email=course@localhost", *args], check=True, capture_output=True)

    upstream = clone_course(tmp_path / "upstream")
    git(tmp_path, "clone", "-q", str(upstream), "learner")
    learner = tmp_path / "learner"
    quiz = "release/quiz01_history/quiz01_history.ipynb"
    subprocess.run([sys.executable, "-m", "ketamine_course.workspace", ".", "work"], cwd=learner, check=True, capture_output=True)
    mine = json.loads((learner / "work" / quiz).read_text(encoding="utf-8"))
    answer = next(c for c in mine["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "q1_answer")
    answer["source"] = ['answer_q1 = "B"']
    (learner / "work" / quiz).write_text(json.dumps(mine), encoding="utf-8")
    assert git_status(learner) == [], "the learner's answers show up as changes to the course"

    _update_text(upstream / quiz)
    git(upstream, "commit", "-qam", "course update")
    git(learner, "pull", "-q", "--ff-only")
    seeded = subprocess.run([sys.executable, "-m", "ketamine_course.workspace", ".", "work"], cwd=learner, check=True, capture_output=True, text=True)
    assert "your copy is kept" in seeded.stdout and quiz in seeded.stdout
    kept = json.loads((learner / "work" / quiz).read_text(encoding="utf-8"))
    assert ['answer_q1 = "B"'] in [c["source"] for c in kept["cells"]]
    assert (learner / quiz).read_text(encoding="utf-8") == (upstream / quiz).read_text(encoding="utf-8")
