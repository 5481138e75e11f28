"""Grade a quiz from inside it: one cell, the learner's score and each question's feedback in the notebook.

The last cell of each quiz leads to :func:`grade_here`. It grades the quiz **as
saved** with exactly the pipeline an instructor's grading uses (hidden tests
judged in a separate process, the learner's code in the sandbox where this
machine has one; otherwise it says so), and refuses with "save first" when an
answer cell was run in a version that is not the saved one, so what is graded
is what the learner sees. The scratch course the grading needs (the quiz's
gradebook) is made once per quiz and version and reused, so a grade takes about
as long as running the notebook.

The quiz's grade cell calls :func:`ketamine_course.quiz.grade_here` (the kernel
side), which finds this function through the ``ketamine_course.grader`` entry
point (pyproject.toml) and returns at once, loading nothing, while the quiz is
being graded; a learner's copy of an earlier release imports it from here
directly, and it too returns at once then. The quiz's first cell calls
:func:`ketamine_course.quiz.track_cells`, which remembers the source each cell
was last run with.
"""

from __future__ import annotations

import hashlib
import html
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..quiz.cells import unsaved_answers, while_graded

__all__ = ["grade_here", "warm_up", "prepare_course"]


def _this_notebook() -> Path:
    """The notebook this kernel belongs to (JupyterLab tells the kernel its path)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        session = shell.user_ns.get("__session__") if shell is not None else None
    except ImportError:
        session = None
    session = session or os.environ.get("JPY_SESSION_NAME")
    if not session:
        raise FileNotFoundError(
            "this is not a notebook open in JupyterLab; grade from a terminal with: ./course grade QUIZ"
        )
    path = Path(session)
    return path if path.is_absolute() else Path.cwd() / path.name


def _scratch_course(root: Path, quiz: str) -> Path:
    """A course folder with the quiz's gradebook, made once per version of the quiz and reused."""
    from .run import generate_release

    source = root / "source" / quiz / f"{quiz}.ipynb"
    version = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cache = root / ".grading-cache" / f"{quiz}-{version}"  # git-ignored, beside the learner's work
    if (cache / "gradebook.db").is_file() and (cache / "release" / quiz / f"{quiz}.ipynb").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{quiz}-", dir=cache.parent))
    try:
        shutil.copytree(root / "source" / quiz, building / "source" / quiz)
        generate_release(building, quiz, db_url=f"sqlite:///{building / 'gradebook.db'}")
        if cache.exists() and not (cache / "gradebook.db").is_file():
            shutil.rmtree(cache, ignore_errors=True)  # an unfinished copy (never made by the rename below)
        try:
            building.rename(cache)  # the scratch course's gradebook path is written into nothing, so it may move
        except OSError:  # another process (the course's preparation, a second grade) finished first: theirs is used
            if not (cache / "gradebook.db").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return cache


def prepare_course(root: Path) -> list[str]:
    """Make every quiz's scratch course ahead of a learner's first grade (``./course open`` runs this in the
    background, Binder's build once); the quizzes prepared."""
    from .run import quizzes

    prepared = []
    for quiz in quizzes(root):
        _scratch_course(root, quiz)
        prepared.append(quiz)
    return prepared


_WARMING: threading.Thread | None = None
"""The thread loading the grader in this kernel (see :func:`warm_up`)."""


def warm_up() -> None:
    """Load the grader in this kernel in the background while the learner answers (the quiz's first cell calls this
    through :func:`ketamine_course.quiz.track_cells`), so that the first grade takes about as long as later ones.

    It imports the grading pipeline, reads the course's configuration and
    makes the quiz's scratch course if ``./course open`` has not yet. It
    prints nothing and any failure is left for :func:`grade_here` to report.
    """
    global _WARMING
    if _WARMING is None:
        _WARMING = threading.Thread(target=_load_grader, name="ketamine-course-grader-warm-up", daemon=True)
        _WARMING.start()


def _load_grader() -> None:
    try:
        notebook = _this_notebook()  # outside JupyterLab (a script, nbclient) nothing is loaded
        import importlib

        from .config import grading_config
        from .hidden import MODULES
        from .run import find_course_root

        for module in sorted(MODULES):  # what hidden tests import, in the grader
            importlib.import_module(module)
        root = find_course_root(notebook.parent)
        grading_config(root)
        if (root / "source" / notebook.stem).is_dir():
            _scratch_course(root, notebook.stem)
    except Exception:  # noqa: BLE001, S110 - the grade itself reports what is wrong, in the learner's words
        pass


def _await_warm_up() -> None:
    """Let the background loading finish before grading (it installs the same pipeline)."""
    if _WARMING is not None and _WARMING is not threading.current_thread():
        _WARMING.join()


def grade_here(quiz: str | None = None) -> Any:
    """Grade this quiz as saved, and show the score and each question's feedback (returns the HTML shown).

    While the quiz itself is being graded or validated (nbgrader sets
    ``NBGRADER_EXECUTION``) this does nothing. When an answer was run in a
    version that is not saved it grades nothing and says "save first".
    """
    from IPython.display import HTML

    # nothing heavy (nbgrader, SQLAlchemy) is imported until there is something to grade: while nbgrader
    # grades the quiz, or when the quiz runs outside JupyterLab, this cell costs next to nothing
    graded = while_graded()
    if graded is not None:
        return graded
    try:
        notebook = _this_notebook()
    except FileNotFoundError as reason:  # run outside JupyterLab (nbconvert, a script): say how to grade instead
        return HTML(f"<p class='ketamine-grade-unsaved'>{html.escape(str(reason))}</p>")
    stale = unsaved_answers(notebook)
    if stale:
        message = (
            f"Save first (File → Save Notebook, or Ctrl+S), then run this cell again: the saved file does not hold "
            f"the answers you last ran in {', '.join(stale)}, and the grader grades the saved file."
        )
        return HTML(f"<p class='ketamine-grade-unsaved'><strong>Not graded.</strong> {html.escape(message)}</p>")
    _await_warm_up()
    from .run import find_course_root, self_grade

    quiz = quiz or notebook.stem
    root = find_course_root(notebook.parent)
    course = _scratch_course(root, quiz)
    result = self_grade(quiz, notebook, course_root=root, feedback_dir=root / "feedback", prepared=course)
    return HTML(_render(result))


def _render(result: Any) -> str:
    grade = result.grade
    rows = []
    for grade_id, (score, points) in grade.questions.items():
        message = grade.messages.get(grade_id, "").splitlines()
        last = message[-1] if message else ""
        mark = "✓" if score == points else "✗"
        rows.append(
            f"<tr><td>{html.escape(grade_id.split('_')[0])}</td><td>{mark} {score:g} / {points:g}</td>"
            f"<td>{html.escape(last)}</td></tr>"
        )
    note = ""
    if not result.sandboxed:
        from .sandbox import why_unsandboxed

        note = f"<p>Graded without the sandbox ({html.escape(why_unsandboxed())}); it ran only your own code.</p>"
    flagged = "".join(
        f"<li>{html.escape(f.grade_id)}: {html.escape(f.problem)} ({html.escape(f.detail)})</li>"
        for f in grade.tampering
    )
    return (
        f"<div class='ketamine-grade'><h3>Your score: {grade.score:g} / {grade.max_score:g}</h3>"
        f"<table><thead><tr><th>question</th><th>points</th><th>feedback</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{note}{'<p>Notes:</p><ul>' + flagged + '</ul>' if flagged else ''}"
        f"<p>Graded from the saved file in {grade.seconds:.1f} s. "
        f"The full feedback page: feedback/{html.escape(result.feedback_html.name)}</p></div>"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m ketamine_course.grading.here --prepare [COURSE]``: prepare every quiz's scratch course."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "--prepare":
        print("usage: python -m ketamine_course.grading.here --prepare [COURSE]", file=sys.stderr)
        return 2
    from .run import find_course_root

    root = find_course_root(Path(args[1]) if len(args) > 1 else None)
    prepared = prepare_course(root)
    print(f"prepared for grading: {', '.join(prepared) or 'no quiz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
