"""A submission that could not be graded automatically, graded by hand in nbgrader's formgrader.

The formgrader's Manual Grading lists a submission only when ``autograded/<student>/<quiz>/`` holds its notebook
and the gradebook records the submission's own time; without both it shows the submission as "needs autograding"
and offers nothing to grade. :func:`~ketamine_course.grading.review.flag_for_review` writes a hand-grading copy
there (the quiz as released, the student's answers where they can be read safely, made inert). The fast tests
check that copy and nbgrader's own lists (the functions the formgrader calls); the slow one grades a class with
``ketamine-grade class``, opens the formgrader on a Jupyter server of the instructor's, gives the ungradable
submission its points and a comment through the formgrader's API, clears its flag, and exports the grade.
"""

from __future__ import annotations

import copy
import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading_helpers import (
    MARKDOWN_CELLS,
    ROOT,
    active_content,
    formgrader_api,
    jupyter_server,
    make_course,
    nbgrader_meta,
    notebook_markup,
    release_nb,
    solutions,
    submission,
    submit,
)
from ketamine_course.grading.config import COURSE_ID
from ketamine_course.grading.review import (
    HAND_GRADING,
    NOT_GRADED,
    SubmissionFolders,
    flag_for_review,
    hand_grading_notebook,
)

QUIZ = "quiz01_history"
STUCK = "the student's kernel stopped responding and could not be stopped; grade this submission by hand"


def _answers(nb: nbformat.NotebookNode) -> dict[str, str]:
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if nbgrader_meta(c).get("solution")}


def test_the_hand_grading_copy_is_the_quiz_with_the_student_s_answers_and_why() -> None:
    released = release_nb(QUIZ)
    before = copy.deepcopy(released)
    theirs = submission(QUIZ, solutions(QUIZ))
    theirs.cells[4].outputs = [nbformat.v4.new_output("stream", text="printed while the student worked")]
    nb = hand_grading_notebook(released, theirs, STUCK)
    assert released == before, "the released notebook is not changed"
    assert nb.cells[0].cell_type == "markdown" and NOT_GRADED in nb.cells[0].source and "kernel stopped" in nb.cells[0].source
    assert "the student's, as submitted" in nb.cells[0].source
    assert _answers(nb) == _answers(theirs) != _answers(released)
    # every graded cell of the quiz is there, with its points: the formgrader's score boxes
    assert [nbgrader_meta(c) for c in nb.cells[1:]] == [nbgrader_meta(c) for c in released.cells]
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    assert nb.metadata[HAND_GRADING].startswith("the student's kernel")
    nbformat.validate(nb)

    blank = hand_grading_notebook(released, None, "the notebook file is not valid JSON")
    assert "could not be read" in blank.cells[0].source and _answers(blank) == _answers(released)
    stripped = copy.deepcopy(theirs)
    for cell in stripped.cells:
        cell.metadata.pop("nbgrader", None)
    unmatched = hand_grading_notebook(released, stripped, "tampered")
    assert "none of this quiz's answer cells" in unmatched.cells[0].source and _answers(unmatched) == _answers(released)


def test_the_hand_grading_copy_runs_nothing_the_student_or_a_file_name_wrote() -> None:
    theirs = submission(QUIZ)
    for text in MARKDOWN_CELLS:  # a student's own Markdown cells, and an answer cell turned into Markdown
        theirs.cells.append(nbformat.v4.new_markdown_cell(text))
    answer = next(c for c in theirs.cells if nbgrader_meta(c).get("solution"))
    answer.cell_type, answer.source = "markdown", MARKDOWN_CELLS[0]
    nb = hand_grading_notebook(release_nb(QUIZ), theirs, f"refused: <img src=x onerror=alert(1)>{MARKDOWN_CELLS[5]}")
    assert active_content(notebook_markup(nb)) == []
    assert len(nb.cells) == len(release_nb(QUIZ).cells) + 1, "only the quiz's own cells, and the note"
    assert all(c.cell_type == "code" for c in nb.cells if nbgrader_meta(c).get("solution")), "an answer keeps its kind"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course that knows the quiz, with Ada's submission (a timestamp as nbgrader's collect leaves it)."""
    course = make_course(tmp_path, QUIZ)
    submit(course, QUIZ, "ada", submission(QUIZ, solutions(QUIZ)))
    (course / "submitted" / "ada" / QUIZ / "timestamp.txt").write_text("2026-12-01 09:30:00.000000 UTC")
    return course


def _api(course: Path):
    """nbgrader's API on the course, as the formgrader builds it."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def test_a_flagged_submission_is_listed_for_manual_grading(course: Path) -> None:
    db = f"sqlite:///{course / 'gradebook.db'}"
    (course / "autograded" / "ada" / QUIZ).mkdir(parents=True)
    (course / "autograded" / "ada" / QUIZ / f"{QUIZ}.ipynb").write_text("an earlier graded copy, no longer the submission")
    assert flag_for_review(db, COURSE_ID, QUIZ, "ada", STUCK, SubmissionFolders.in_course(course, QUIZ, "ada"))

    api = _api(course)
    (listed,) = api.get_submissions(QUIZ)
    assert listed["student"] == "ada" and listed["autograded"], "the formgrader would say 'needs autograding'"
    assert listed["needs_manual_grade"]
    (manual,) = api.get_notebook_submissions(QUIZ, QUIZ)  # the formgrader's Manual Grading list
    assert manual["student"] == "ada" and manual["index"] == 0 and manual["flagged"]
    graded = nbformat.read(course / "autograded" / "ada" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    assert _answers(graded) == _answers(submission(QUIZ, solutions(QUIZ)))
    assert (course / "autograded" / "ada" / QUIZ / "timestamp.txt").read_text() == "2026-12-01 09:30:00.000000 UTC"
    with Gradebook(db, COURSE_ID) as gradebook:
        assert str(gradebook.find_submission(QUIZ, "ada").timestamp) == "2026-12-01 09:30:00"


def test_nothing_is_read_from_a_refused_submission(course: Path) -> None:
    folder = course / "submitted" / "ada" / QUIZ
    (folder / "notes.txt").symlink_to(course / "gradebook.db")
    db = f"sqlite:///{course / 'gradebook.db'}"
    assert flag_for_review(db, COURSE_ID, QUIZ, "ada", "a link", SubmissionFolders.in_course(course, QUIZ, "ada"))
    graded = nbformat.read(course / "autograded" / "ada" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    assert _answers(graded) == _answers(release_nb(QUIZ)) and "could not be read" in graded.cells[0].source
    assert not (course / "autograded" / "ada" / QUIZ / "notes.txt").exists()


@pytest.mark.slow
def test_the_instructor_grades_an_ungradable_submission_by_hand_in_the_formgrader(tmp_path: Path, sandbox: bool) -> None:
    if not sandbox:
        pytest.skip("the instructor's commands refuse to grade without the sandbox")
    course = make_course(tmp_path, QUIZ)
    submit(course, QUIZ, "ada", submission(QUIZ, solutions(QUIZ)))
    submit(course, QUIZ, "renamed", submission(QUIZ, solutions(QUIZ)))
    folder = course / "submitted" / "renamed" / QUIZ
    (folder / f"{QUIZ}.ipynb").rename(folder / "my quiz.ipynb")
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    bin_ = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    graded = subprocess.run([str(bin_ / "ketamine-grade"), "class", QUIZ], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert graded.returncode == 1 and "renamed" in graded.stdout, graded.stdout + graded.stderr

    with jupyter_server([sys.executable, "-m", "jupyter", "server"], course, env, tmp_path / "server.log") as server:
        call = formgrader_api(server)
        listed = {s["student"]: s for s in call(f"/formgrader/api/submissions/{QUIZ}")}
        assert listed["renamed"]["autograded"] and listed["renamed"]["needs_manual_grade"], "not 'needs autograding'"
        manual = {s["student"]: s for s in call(f"/formgrader/api/submitted_notebooks/{QUIZ}/{QUIZ}")}
        assert set(manual) == {"ada", "renamed"} and manual["renamed"]["flagged"], "both are in Manual Grading"
        notebook_id = manual["renamed"]["id"]
        page = call(f"/formgrader/submissions/{notebook_id}/?index={manual['renamed']['index']}", raw=True)
        grades = call(f"/formgrader/api/grades?submission_id={notebook_id}")
        assert grades and all(f'id="{g["name"]}"' in page for g in grades), "a score box for each question"
        assert "as submitted (not run)" not in page and "could not be read" in page  # its notebook has another name
        for grade in grades:
            call(f"/formgrader/api/grade/{grade['id']}", "PUT", {"manual_score": grade["max_score"] / 2})
        comments = call(f"/formgrader/api/comments?submission_id={notebook_id}")
        call(f"/formgrader/api/comment/{comments[0]['id']}", "PUT", {"manual_comment": "Graded by hand: renamed notebook."})
        call(f"/formgrader/api/submitted_notebook/{notebook_id}/flag", "POST", {})
        after = {s["student"]: s for s in call(f"/formgrader/api/submissions/{QUIZ}")}
        half = sum(g["max_score"] for g in grades) / 2
        assert after["renamed"]["score"] == half and not after["renamed"]["needs_manual_grade"]
        assert not {s["student"]: s for s in call(f"/formgrader/api/submitted_notebooks/{QUIZ}/{QUIZ}")}["renamed"]["flagged"]

    export = subprocess.run([str(bin_ / "ketamine-grade"), "export", "--out", str(tmp_path / "grades")], cwd=course, env=env,
                            capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stdout + export.stderr
    with open(tmp_path / "grades" / "moodle.csv", newline="") as handle:
        grades_out = {row["Username"]: row[QUIZ] for row in csv.DictReader(handle)}
    assert float(grades_out["renamed"]) == half and float(grades_out["ada"]) == 2 * half
    feedback = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", QUIZ, "--student", "renamed"], cwd=course,
                              env=env, capture_output=True, text=True, timeout=300)
    assert feedback.returncode == 0, feedback.stdout + feedback.stderr
    page_path = course / "feedback" / "renamed" / QUIZ / f"{QUIZ}.html"
    assert "Graded by hand: renamed notebook." in page_path.read_text(encoding="utf-8")
