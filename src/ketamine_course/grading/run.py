"""Grading a class and grading oneself, through nbgrader's Python API in one process.

:func:`grade_class` autogrades every submission of a quiz, one kernel at a
time, each in its cage; :func:`self_grade` grades a learner's own copy in a
scratch course and writes a feedback page. Both use the configuration of
:mod:`ketamine_course.grading.config`, so they grade exactly as
``nbgrader autograde`` does.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .config import grading_config
from .export import after_late_penalty
from .hidden import grade_id_of
from .intake import (
    Limits,
    SubmissionRefused,
    check_student_id,
    check_student_id_ok,
    check_tree,
    configured_limits,
    printable,
)
from .review import empty_submission_reason
from .tamper import TamperFinding, quiz_of, read_report

__all__ = [
    "QUIZZES", "quizzes", "QuizNotInGradebook", "SubmissionGrade", "SelfGradeResult", "grade_class", "self_grade",
    "generate_release", "find_course_root", "summary_table", "tamper_text", "exposed_to_others",
]

def quizzes(course_root: Path) -> list[str]:
    """The quizzes of a course: every ``source/<quiz>/<quiz>.ipynb`` (the one list of quizzes)."""
    source = Path(course_root) / "source"
    return sorted(p.name for p in source.iterdir() if (p / f"{p.name}.ipynb").is_file()) if source.is_dir() else []


def exposed_to_others(course_root: Path) -> str | None:
    """A warning in words when other users of this machine can reach the course folder (its gradebook, solutions,
    submissions), else None."""
    try:
        mode = os.stat(course_root).st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o007:
        return None
    return (f"other users of this machine can reach your course folder {course_root} (mode {mode:o}): the gradebook, "
            f"source/ (solutions and hidden tests) and your students' submissions; "
            f"make it yours alone: chmod 700 {course_root}")


def find_course_root(start: Path | None = None) -> Path:
    """The folder holding ``nbgrader_config.py`` and ``source/``: ``start`` or a parent of it, else the repository."""
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    candidates.append(Path(__file__).resolve().parents[3])
    for folder in candidates:
        if (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir():
            return folder
    raise FileNotFoundError("cannot find the course folder (with nbgrader_config.py and source/); run from inside it")


QUIZZES = tuple(quizzes(Path(__file__).resolve().parents[3]))
"""This repository's quizzes (empty for an installed package without the repository)."""


@contextlib.contextmanager
def _quiet_nbgrader() -> Iterator[None]:
    """nbgrader logs through the root logger and SQLAlchemy warns on first use; keep the terminal readable."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.level
        logging.root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.root.setLevel(previous)


def _api(config: Any) -> Any:
    import os

    from nbgrader.apps import NbGraderAPI

    # nbgrader runs the `alembic` command of its own environment to check the gradebook's schema
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    return NbGraderAPI(config=config)


def _check(result: dict[str, Any], what: str) -> None:
    if not result.get("success"):
        log = result.get("log") or ""
        errors = [line for line in log.splitlines() if "[ERROR]" in line or line.startswith("    ")]
        raise RuntimeError(f"nbgrader {what} failed:\n" + ("\n".join(errors[-15:]) or str(result.get("error"))))


def generate_release(course_root: Path, quiz: str, db_url: str | None = None) -> Path:
    """Regenerate ``release/<quiz>/`` from ``source/<quiz>/`` with nbgrader (deterministic output)."""
    root = Path(course_root).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        config = grading_config(root, db_url or f"sqlite:///{Path(scratch) / 'gradebook.db'}")
        with _quiet_nbgrader():
            _check(_api(config).generate_assignment(quiz, force=True), f"generate_assignment {quiz}")
    return root / "release" / quiz


@dataclass
class SubmissionGrade:
    """The outcome of grading one student's quiz, as the gradebook records it."""

    student_id: str
    score: float
    """Raw points, before any late penalty."""
    max_score: float
    seconds: float
    questions: dict[str, tuple[float, float]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    tampering: list[TamperFinding] = field(default_factory=list)
    needs_manual_grade: bool = False
    error: str | None = None
    late_penalty: float = 0.0
    """nbgrader's late penalty in points, from the gradebook (feedback and ``ketamine-grade export`` apply it)."""
    flagged: bool = False
    """Flagged for review in the gradebook (its Flagged column in the formgrader), read back once graded."""
    review: list[str] = field(default_factory=list)
    """Why the grader flagged it, in words, beyond the tamper report (code that wrote to stderr in a passing test,
    a notebook from another quiz)."""
    from_quiz: str | None = None
    """The quiz the submitted notebook is from, when it is another quiz's."""

    @property
    def final_score(self) -> float:
        """The score after the late penalty: the one feedback and the LMS export give."""
        return after_late_penalty(self.score, self.late_penalty)


@dataclass(frozen=True)
class _Recorded:
    """What the gradebook holds of one graded submission."""

    score: float
    max_score: float
    questions: dict[str, tuple[float, float]]
    needs_manual_grade: bool
    flagged: bool
    late_penalty: float


def _recorded(config: Any, quiz: str, student_id: str) -> _Recorded | None:
    """The gradebook's record of a submission (None: it has none), read back after grading."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gradebook:
        try:
            submission = gradebook.find_submission(quiz, student_id)
        except MissingEntry:
            return None
        questions = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                questions[grade.name] = (float(grade.score), float(grade.max_score))
        return _Recorded(
            float(submission.score), float(submission.max_score), questions, bool(submission.needs_manual_grade),
            any(notebook.flagged for notebook in submission.notebooks),
            float(submission.late_submission_penalty or 0.0),
        )


def _flag_reasons(log: str, student_id: str) -> list[str]:
    """Why the grader's pipeline flagged a submission, as it logged it while flagging the gradebook (the same step,
    :class:`~ketamine_course.grading.adapters.preprocessors.FlagTampering`)."""
    pattern = rf"Flagged for review: {re.escape(student_id)}: (.+)$"
    return [reason.strip() for reason in re.findall(pattern, log, flags=re.MULTILINE)]


def _plain_file(path: Path, max_bytes: int) -> bool:
    """Whether a path is a regular file (not a link) of at most ``max_bytes``."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return path.is_file() and not path.is_symlink() and info.st_size <= max_bytes


def _other_quiz(root: Path, quiz: str, notebook: Path) -> str | None:
    """The quiz of the course a submitted notebook is from, when that is not ``quiz`` (by its locked cells' words)."""
    if not _plain_file(notebook, Limits.max_notebook_bytes):
        return None
    try:
        submitted = nbformat.read(notebook, as_version=4)
    except Exception:  # not a notebook: said elsewhere
        return None
    known = {name: root / "source" / name / f"{name}.ipynb" for name in quizzes(root)}
    found = quiz_of(submitted, {name: nbformat.read(path, as_version=4) for name, path in known.items()})
    return found if found not in (None, quiz) else None


def _another_quizs_notebook(root: Path, quiz: str, folder: Path) -> tuple[str, str] | None:
    """(file name, quiz) of a notebook in a submission folder that is another quiz's, where the folder holds none of
    this quiz's name."""
    if folder.is_symlink() or folder.parent.is_symlink() or not folder.is_dir():
        return None
    for notebook in sorted(folder.glob("*.ipynb")):
        other = _other_quiz(root, quiz, notebook)
        if other:
            return notebook.name, other
    return None


def _from_other_quiz_text(other: str, quiz: str) -> str:
    """What the summary (and the gradebook) say of a notebook from another quiz submitted as this one."""
    return f"this notebook is from {other}, not {quiz}; ask the student to submit {quiz}"


def _messages(autograded: Path) -> dict[str, str]:
    """What each test cell said (the visible check's or the hidden judgement's message)."""
    nb = nbformat.read(autograded, as_version=4)
    messages = {}
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id is None or cell.cell_type != "code":
            continue
        lines = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                lines.append(output.get("evalue") or output.get("ename", "error"))
            elif output.get("output_type") == "stream":
                lines.append(output.get("text", "").strip())
        messages[grade_id] = "\n".join(line for line in lines if line)
    return messages


def _failure_reason(outcome: dict[str, Any]) -> str:
    """Why nbgrader could not grade a submission, in words (a refusal's own message where there is one)."""
    text = f"{outcome.get('error') or ''}\n{outcome.get('log') or ''}"
    named = re.findall(
        r"Not graded: [^:]+: (.+?)(?: \(flagged for review in the gradebook\))?$", text, flags=re.MULTILINE
    )
    if named:  # said by the course's Autograde hooks (ketamine_course.grading.review)
        return named[-1].strip()
    refused = re.findall(r"SubmissionRefused: (.+)", text)
    if refused:
        return refused[-1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "[ERROR]" in line]
    return (errors or lines or ["failed"])[-1][:300]


def grade_class(
    course_root: Path,
    quiz: str,
    students: Iterable[str] | None = None,
    db_url: str | None = None,
    timeout_s: int | None = None,
    progress: Callable[[str], None] | None = print,
    sandbox: bool | None = None,
    notebook_timeout_s: float | None = None,
    config_root: Path | None = None,
    only_changed: bool = False,
    jobs: int = 1,
) -> list[SubmissionGrade]:
    """Autograde every submission of ``quiz`` under ``submitted/``, recording each grade in the gradebook.

    Settings come from the course's ``nbgrader_config.py`` (see
    :func:`~ketamine_course.grading.config.grading_config`); the keyword
    arguments override them. ``only_changed`` skips submissions already
    graded since they were last changed. Each notebook runs in its cage (see
    :mod:`ketamine_course.grading.sandbox`); where it cannot be sandboxed this
    refuses to start unless sandboxing is switched off explicitly.

    ``jobs`` worker processes grade at once (each one kernel at a time, with
    uids no other worker draws); the grades are those of one worker, and the
    results come back in the students' order. A submission that cannot be
    graded is flagged in the gradebook with the reason (see
    :mod:`ketamine_course.grading.review`).
    """
    from .cgroups import current_plan
    from .sandbox import require_sandbox

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    root = Path(course_root).resolve()
    settings = _Settings(root, db_url, timeout_s, sandbox, notebook_timeout_s, config_root)
    config = settings.config()
    if config.BoundedExecute.get("sandbox", True):
        require_sandbox()
        # how kernels are limited, found before workers fork: a delegated cgroup's one-time move happens once
        current_plan()
    _require_quiz_in_gradebook(config, quiz)
    if students is None:
        students = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{quiz}") if p.is_dir() or p.is_symlink())
    students = list(students)
    if only_changed:
        students = [s for s in students if _changed_since_graded(root, quiz, s)]
    results: list[SubmissionGrade] = []

    def report(result: SubmissionGrade) -> None:
        results.append(result)
        if progress:
            bar = "#" * round(20 * len(results) / len(students))
            status = _score_text(result) if result.error is None else f"FAILED ({result.error})"
            shown = result.student_id if check_student_id_ok(result.student_id) else repr(result.student_id)[:40]
            progress(f"[{bar:<20}] {len(results)}/{len(students)} {shown}: {status} in {result.seconds:.1f} s")

    if len(students) < 2:  # one submission (self-grading, grade_here): in this process
        _grade_in_process(settings, quiz, students, report, config)
    else:  # a class: in worker processes (one for jobs=1), which Ctrl-C does not reach (see _start_worker)
        _grade_in_workers(settings, quiz, students, min(jobs, len(students)), report)
    order = {student_id: number for number, student_id in enumerate(students)}
    return sorted(results, key=lambda r: order[r.student_id])


class QuizNotInGradebook(ValueError):
    """The gradebook does not know the quiz: nothing could be graded (the message says what to run)."""


def _require_quiz_in_gradebook(config: Any, quiz: str) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with _quiet_nbgrader(), Gradebook(config.CourseDirectory.db_url, config.CourseDirectory.course_id) as gradebook:
        try:
            gradebook.find_assignment(quiz)
        except MissingEntry:
            raise QuizNotInGradebook(
                f"the gradebook ({config.CourseDirectory.db_url.removeprefix('sqlite:///')}) does not know {quiz}; "
                f"run 'nbgrader generate_assignment {quiz}' (or 'ketamine-grade release {quiz}') first, "
                "then grade again"
            ) from None


@dataclass(frozen=True)
class _Settings:
    """What :func:`grade_class` was asked for: enough for a worker process to build the same configuration."""

    root: Path
    db_url: str | None
    timeout_s: int | None
    sandbox: bool | None
    notebook_timeout_s: float | None
    config_root: Path | None

    def config(self) -> Any:
        return grading_config(
            self.root, self.db_url, self.timeout_s, self.sandbox, self.notebook_timeout_s, config_root=self.config_root
        )


def _grade_one(api: Any, config: Any, root: Path, quiz: str, student_id: str) -> SubmissionGrade:
    """Autograde one submission (nbgrader's API) and read back its grades and flags from the gradebook; a failure is
    flagged there, with a copy to grade by hand."""
    from .review import SubmissionFolders, flag_for_review

    start = time.perf_counter()
    report = root / "reports" / "tamper" / quiz / f"{student_id}.json"
    folder = root / "submitted" / student_id / quiz
    if not os.path.lexists(folder):
        return SubmissionGrade(student_id, 0.0, 0.0, 0.0, needs_manual_grade=True,
                               error=f"no submission: there is no folder submitted/{printable(student_id, 80)}/{quiz} "
                               "(check the student id)")
    refused = False
    try:
        check_student_id(student_id)
        check_tree(folder, **configured_limits(config))
        if not folder.is_symlink() and not any(folder.glob("*.ipynb")):
            raise SubmissionRefused(empty_submission_reason(quiz))
        report.unlink(missing_ok=True)
        with _quiet_nbgrader():
            outcome = api.autograde(quiz, student_id, force=True, create=True)
    except SubmissionRefused as reason:
        refused = True
        outcome = {"success": False, "error": f"SubmissionRefused: {reason}"}
    # nbgrader's word for Ctrl-C: stop, and record nothing against the student
    log = str(outcome.get("log") or "")
    if "[ERROR] Canceled" in log:
        raise KeyboardInterrupt
    seconds = time.perf_counter() - start
    tampering = read_report(root, quiz, student_id) or []
    record = _recorded(config, quiz, student_id) if outcome.get("success") else None
    if record is not None:
        messages = _messages(root / "autograded" / student_id / quiz / f"{quiz}.ipynb")
        other = _other_quiz(root, quiz, folder / f"{quiz}.ipynb") if tampering else None
        review = ([_from_other_quiz_text(other, quiz)] if other else []) + _flag_reasons(log, student_id)
        return SubmissionGrade(
            student_id, record.score, record.max_score, seconds, record.questions, messages, tampering,
            record.needs_manual_grade or bool(tampering), late_penalty=record.late_penalty, flagged=record.flagged,
            review=review, from_quiz=other,
        )
    error = _failure_reason(outcome)
    found = None if refused or (folder / f"{quiz}.ipynb").exists() else _another_quizs_notebook(root, quiz, folder)
    if found:
        name, other = found
        error = f"the submission holds {printable(name, 80)} (no {quiz}.ipynb): {_from_other_quiz_text(other, quiz)}"
    with _quiet_nbgrader():
        recorded = flag_for_review(config.CourseDirectory.db_url, config.CourseDirectory.course_id, quiz, student_id,
                                   error, SubmissionFolders.in_course(root, quiz, student_id))
        record = _recorded(config, quiz, student_id) if recorded else None
    return SubmissionGrade(
        student_id, 0.0, 0.0, seconds, tampering=tampering, needs_manual_grade=True, error=error,
        flagged=record is not None and record.flagged, from_quiz=found[1] if found else None,
    )


def _wait_for_lock(connection: Any, _record: Any) -> None:
    if type(connection).__module__.startswith("sqlite3"):
        connection.execute("PRAGMA busy_timeout = 60000")


def _patient_sqlite() -> None:
    """Let gradebook writers wait for each other (SQLite's busy timeout, 60 s) instead of failing with "database is
    locked"."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _wait_for_lock):
        event.listen(Engine, "connect", _wait_for_lock)


def _grader(settings: _Settings, config: Any = None) -> tuple[Any, Any]:
    """The configuration and nbgrader's API for grading in this process (gradebook writers made patient)."""
    _patient_sqlite()
    config = config if config is not None else settings.config()
    return config, _api(config)


def _grade_in_process(
    settings: _Settings, quiz: str, students: list[str], report: Callable[[SubmissionGrade], None], config: Any = None
) -> None:
    """Grade ``students`` one after another in this process, reporting each result."""
    config, api = _grader(settings, config)
    for student_id in students:
        report(_grade_one(api, config, settings.root, quiz, student_id))


_WORKER: dict[str, Any] = {}


def _die_with(parent: int) -> None:
    """End this process (and so its kernel, tied to it) the moment ``parent`` dies; at once if it already has."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(settings: _Settings, slots: Any, workers: int, grader: int) -> None:
    """In a worker process: take a slot (its share of the sandbox uids) and build nbgrader's API once.

    Ctrl-C is the grader's to handle: a worker leaves the terminal's process
    group, so it finishes the submission it is grading (within its time
    limits) instead of having its kernel shut down mid-notebook (nbclient's
    own SIGINT handler) and the student's grade spoiled.
    """
    from .sandbox import WORKER_SLOT_ENV

    _die_with(grader)
    os.setpgid(0, 0)
    os.environ[WORKER_SLOT_ENV] = f"{slots.get()}/{workers}"
    config, api = _grader(settings)
    _WORKER.update(config=config, api=api, root=settings.root)


def _grade_in_worker(quiz: str, student_id: str) -> SubmissionGrade:
    return _grade_one(_WORKER["api"], _WORKER["config"], _WORKER["root"], quiz, student_id)


def _grade_in_workers(
    settings: _Settings, quiz: str, students: list[str], workers: int, report: Callable[[SubmissionGrade], None]
) -> None:
    """Grade with ``workers`` processes, each taking the next submission when it is free; ``report`` each result as it
    comes."""
    import itertools
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # fork: a worker starts with nbgrader already imported, and the caller's main module is never run again
    # (a script calling grade_class needs no ``if __name__ == "__main__"`` guard)
    context = multiprocessing.get_context("fork")
    # no feeder thread: the process stays single-threaded when it forks (Python 3.12+ warns otherwise)
    slots = context.SimpleQueue()
    for slot in range(workers):
        slots.put(slot)
    done: set[str] = set()
    waiting = iter(students)
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(settings, slots, workers, os.getpid())
        ) as pool:
            # hand out one submission per free worker (none queued ahead), so that Ctrl-C stops after the ones in hand
            running = {
                pool.submit(_grade_in_worker, quiz, student_id) for student_id in itertools.islice(waiting, workers)
            }
            try:
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        result = future.result()
                        done.add(result.student_id)
                        report(result)
                        for student_id in itertools.islice(waiting, 1):
                            running.add(pool.submit(_grade_in_worker, quiz, student_id))
            except KeyboardInterrupt:
                print(
                    "ketamine-grade: stopping: the submissions being graded finish, the rest are not started",
                    file=sys.stderr,
                )
                for future in running:
                    result = future.result()
                    if result.student_id not in done:
                        done.add(result.student_id)
                        report(result)
                raise
    except BrokenProcessPool:
        # a worker died (killed from outside, out of memory): grade what is left in this process, one at a time
        left = [student_id for student_id in students if student_id not in done]
        print(
            f"ketamine-grade: a grading worker stopped unexpectedly; grading the remaining {len(left)} in one process",
            file=sys.stderr,
        )
        _grade_in_process(settings, quiz, left, report)


def _changed_since_graded(root: Path, quiz: str, student_id: str) -> bool:
    """Whether a submission has no graded copy yet, or a file in it is newer than that copy."""
    graded = root / "autograded" / student_id / quiz / f"{quiz}.ipynb"
    if not graded.is_file():
        return True
    newest = max((p.lstat().st_mtime for p in (root / "submitted" / student_id / quiz).rglob("*")), default=0.0)
    return newest > graded.lstat().st_mtime


def _score_text(result: SubmissionGrade) -> str:
    """A graded submission's score as feedback and the LMS get it, with the late penalty shown where there is one
    (``7 − 1 late = 6/10``); ``-`` for one not graded."""
    if result.error:
        return "-"
    if result.late_penalty:
        return f"{result.score:g} − {result.late_penalty:g} late = {result.final_score:g}/{result.max_score:g}"
    return f"{result.score:g}/{result.max_score:g}"


def _review_text(result: SubmissionGrade) -> str:
    """Why a submission needs a look, in words: what the gradebook's flag is for, or that it needs manual grading."""
    said = []
    if result.error:
        said.append(f"not graded{', flagged for review' if result.flagged else ''}: {printable(result.error, 300)}")
    said += [printable(reason, 300) for reason in result.review]
    if result.from_quiz and result.tampering:  # every cell differs from this quiz's: the findings say nothing more
        said.append(f"its {len(result.tampering)} differences from this quiz are in the tamper report below")
    else:
        said += [f"{printable(t.grade_id, 60)}: {printable(t.problem, 60)}" for t in result.tampering[:3]]
        if len(result.tampering) > 3:
            said.append(f"and {len(result.tampering) - 3} more (see the tamper report below)")
    if result.flagged and not said:
        said.append("flagged for review in the gradebook before this grading (by an earlier one, or in the "
                    "formgrader): remove the flag there once reviewed")
    if result.needs_manual_grade and not said:
        said.append("needs manual grading")
    return "; ".join(said)


def summary_table(results: list[SubmissionGrade]) -> str:
    """A plain-text table of a class's grades as the gradebook holds them: the score after any late penalty, and why
    each submission flagged there (and only those) is flagged; a submission not graded shows no score."""
    scores = [_score_text(r) for r in results]
    width = max([12, *(len(score) + 2 for score in scores)])
    lines = [f"{'student':<20}{'score':>{width}}{'time (s)':>10}  review"]
    for r, score in zip(results, scores, strict=True):
        shown = r.student_id if check_student_id_ok(r.student_id) else printable(repr(r.student_id), 18)
        lines.append(f"{shown:<20}{score:>{width}}{r.seconds:>10.1f}  {_review_text(r)}")
    graded = [r for r in results if not r.error]
    if results:
        late = " after late penalties" if any(r.late_penalty for r in graded) else ""
        mean = f"mean score{late} {sum(r.final_score for r in graded) / len(graded):.2f}" if graded else "none graded"
        lines.append(
            f"{len(results)} submissions, {len(graded)} graded, {mean}; "
            f"{sum(1 for r in results if r.flagged)} flagged for review in the gradebook"
        )
    return "\n".join(lines)


def tamper_text(results: list[SubmissionGrade]) -> str:
    """The tamper report: every submission whose nbgrader cells were changed, and how."""
    lines = ["Tamper report:"]
    for r in results:
        for finding in r.tampering:
            lines.append(
                f"  {printable(r.student_id)}: {printable(finding.grade_id)}: {printable(finding.problem)} "
                f"({printable(finding.detail)})"
            )
    if len(lines) == 1:
        lines.append("  no graded or locked cell was edited, deleted, duplicated or stripped of its metadata")
    return "\n".join(lines)


@dataclass
class SelfGradeResult:
    """A self-learner's graded quiz."""

    grade: SubmissionGrade
    feedback_html: Path
    sandboxed: bool


def self_grade(
    quiz: str,
    notebook: Path | None = None,
    course_root: Path | None = None,
    feedback_dir: Path | None = None,
    timeout_s: int | None = None,
    sandbox: bool | None = None,
    prepared: Path | None = None,
) -> SelfGradeResult:
    """Grade one learner's quiz with nbgrader, without an instructor, and write a feedback page.

    Works in a scratch course folder: the release version is generated from
    ``source/`` there, the learner's notebook is submitted and autograded with
    the course's ``nbgrader_config.py``, and only the feedback page (which
    shows no solution or hidden test) is copied out, to ``feedback/<quiz>.html``
    by default.

    ``sandbox=None`` (the default) isolates the kernel where this machine can
    and otherwise runs it unsandboxed (the code is the learner's own; Binder
    images, for one, have no bubblewrap); the result says which. ``prepared``
    is a scratch course made earlier for this quiz (its source, release and
    gradebook), copied instead of generated again.
    """
    from .sandbox import sandbox_missing

    if sandbox is None:
        sandbox = not sandbox_missing()
    root = find_course_root(course_root)
    known = quizzes(root)
    if quiz not in known:
        raise ValueError(f"unknown quiz {quiz!r}; the quizzes are {', '.join(known)}")
    notebook = Path(notebook) if notebook else root / "release" / quiz / f"{quiz}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    nbformat.read(notebook, as_version=4)  # fail early, clearly, on a file that is not a notebook
    with tempfile.TemporaryDirectory(prefix="ketamine-grade-") as scratch:
        course = Path(scratch)
        db = f"sqlite:///{course / 'gradebook.db'}"
        if prepared is not None:
            shutil.copytree(prepared, course, dirs_exist_ok=True)
        else:
            shutil.copytree(root / "source" / quiz, course / "source" / quiz)
            generate_release(course, quiz, db_url=db)
        target = course / "submitted" / "self" / quiz
        target.mkdir(parents=True)
        shutil.copy(notebook, target / f"{quiz}.ipynb")
        (grade,) = grade_class(
            course, quiz, ["self"], db_url=db, timeout_s=timeout_s, progress=None, sandbox=sandbox, config_root=root
        )
        if grade.error:
            raise RuntimeError(f"your quiz could not be graded: {grade.error}")
        config = grading_config(course, db, timeout_s, sandbox, config_root=root)
        with _quiet_nbgrader():
            _check(_api(config).generate_feedback(quiz, "self", force=True), "generate_feedback")
        out_dir = Path(feedback_dir) if feedback_dir else root / "feedback"
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / f"{quiz}.html"
        shutil.copy(course / "feedback" / "self" / quiz / f"{quiz}.html", page)
    return SelfGradeResult(grade, page, sandbox)
