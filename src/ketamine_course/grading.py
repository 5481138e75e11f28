"""Grading the quizzes with nbgrader: hidden tests judged outside the student's kernel, a tamper
report, one in-process command for a whole class and one for a self-learner.

How a test cell is graded
-------------------------
A quiz test cell holds a visible check (runs in the kernel, as the student saw
it) and a hidden region between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` (the key). Before execution, :class:`RecordAnswers`
replaces the hidden region with one call to
:func:`ketamine_course.quiz.record_answers`, which prints the answer values
(and an answer function's results on the hidden inputs) as JSON. After
execution, :class:`JudgeAnswers` runs the hidden region in the grader's own
process against those recorded values, restores the cell's source and writes
the outcome as the cell's output (an error output when wrong, which nbgrader
scores as zero). The key never reaches the kernel, so redefining builtins,
patching this package or returning objects whose ``==`` is always true earns
nothing.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from .quiz import RECORD_MARKER, QuizCheckFailed

__all__ = [
    "QUIZZES",
    "RecordAnswers",
    "JudgeAnswers",
    "split_hidden",
    "grading_config",
    "tamper_report",
    "TamperFinding",
    "SubmissionGrade",
    "grade_class",
    "self_grade",
    "generate_release",
    "find_course_root",
]

QUIZZES = ("quiz01_history", "quiz02_mechanism", "quiz03_pharmacokinetics", "quiz04_evidence", "quiz05_safety")
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
COURSE_ID = "ketamine-course"


# --------------------------------------------------------------------------
# Hidden tests: record in the kernel, judge in the grader
# --------------------------------------------------------------------------


def split_hidden(source: str) -> tuple[str, str | None]:
    """(visible part, hidden part or None) of a test cell's source."""
    if BEGIN_HIDDEN not in source:
        return source, None
    before, _, rest = source.partition(BEGIN_HIDDEN)
    hidden, _, after = rest.partition(END_HIDDEN)
    return before.rstrip("\n") + ("\n" + after.strip("\n") if after.strip() else ""), hidden.strip("\n")


def _kernel_inputs(hidden: str) -> tuple[list[str], dict[str, list[list[Any]]]]:
    """Names the hidden code reads from the student's namespace, and the inputs on which to call answer functions."""
    tree = ast.parse(hidden)
    bound: set[str] = set()
    loaded: list[str] = []
    calls: dict[str, list[list[Any]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            arguments = node.args
            bound.update(a.arg for a in arguments.args + arguments.kwonlyargs)
            if isinstance(node, ast.FunctionDef):
                bound.add(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "grade_function":
            target = node.args[1] if len(node.args) > 1 else None
            cases = next((k.value for k in node.keywords if k.arg == "cases"), None)
            if not isinstance(target, ast.Name) or cases is None:
                raise ValueError("grade_function needs the answer function as its second argument and literal cases=[...]")
            calls[target.id] = [list(case) for case in ast.literal_eval(cases)]
    grader_names = set(_grader_namespace())
    names = [
        n for n in dict.fromkeys(loaded) if n not in bound and n not in grader_names and not hasattr(builtins, n) and n not in calls
    ]
    return names, calls


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def _preprocessor_base():
    from nbgrader.preprocessors import NbGraderPreprocessor

    return NbGraderPreprocessor


class RecordAnswers(_preprocessor_base()):  # type: ignore[misc]
    """Before execution: swap each hidden region for a call that records the answers it needs."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        hidden_by_cell: dict[str, tuple[str, str]] = {}
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type != "code" or grade_id is None:
                continue
            visible, hidden = split_hidden(cell.source)
            if hidden is None:
                continue
            names, calls = _kernel_inputs(hidden)
            hidden_by_cell[grade_id] = (cell.source, hidden)
            recorder = (
                f'__import__("ketamine_course.quiz", fromlist=["record_answers"])'
                f".record_answers({grade_id!r}, {names!r}, {json.dumps(calls)})"
            )
            cell.source = f"{visible}\n{recorder}"
        resources.setdefault("ketamine_course", {})["hidden"] = hidden_by_cell
        return nb, resources


class _Replay:
    """Stands in for a student's function in the grader: returns what it returned in the kernel."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        self._outcomes = outcomes

    def __call__(self, *args: Any) -> Any:
        key = json.loads(json.dumps(list(args)))
        for outcome in self._outcomes:
            if outcome.get("args") == key:
                if "error" in outcome:
                    raise _RecordedError(outcome["error"])
                return _decode(outcome["result"])
        raise _RecordedError("NotRecorded")


class _RecordedError(Exception):
    pass


class _Unsupported:
    """An answer of a type the grader does not accept (it equals nothing)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} object>"


def _decode(encoded: Any) -> Any:
    if not isinstance(encoded, dict):
        return _Unsupported("malformed")
    kind = encoded.get("type")
    value = encoded.get("value")
    if kind == "none" or kind == "missing":
        return None
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int:
        return value
    if kind == "float" and type(value) in (int, float):
        return float(value)
    if kind == "nonfinite" and value in ("nan", "inf", "-inf"):
        return float(value)
    if kind == "str" and type(value) is str:
        return value
    return _Unsupported(str(encoded.get("name", kind)))


def _records(outputs: list[NotebookNode], grade_id: str) -> tuple[list[dict[str, Any]], list[NotebookNode]]:
    """Pull this cell's record lines out of its stdout; return (records, remaining outputs)."""
    records: list[dict[str, Any]] = []
    kept: list[NotebookNode] = []
    for output in outputs:
        if output.get("output_type") == "stream" and RECORD_MARKER in output.get("text", ""):
            lines = []
            for line in output["text"].splitlines(keepends=True):
                if line.startswith(RECORD_MARKER):
                    try:
                        payload = json.loads(line[len(RECORD_MARKER):])
                    except json.JSONDecodeError:
                        continue
                    if isinstance(payload, dict) and payload.get("grade_id") == grade_id:
                        records.append(payload)
                else:
                    lines.append(line)
            if lines:
                kept.append(nbformat.v4.new_output("stream", name=output.get("name", "stdout"), text="".join(lines)))
        else:
            kept.append(output)
    return records, kept


def _grader_namespace() -> dict[str, Any]:
    from . import data, dosing, evidence, pk, quiz, receptor

    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "__hidden_test__"}
    namespace.update({name: getattr(quiz, name) for name in quiz.__all__})
    namespace.update(dosing=dosing, pk=pk, receptor=receptor, evidence=evidence, data=data, load_table=data.load_table)
    return namespace


def judge_hidden(hidden: str, record: dict[str, Any]) -> tuple[bool, str]:
    """Run a hidden region in the grader against recorded answers: (passed, message shown to the student)."""
    namespace = _grader_namespace()
    for name, encoded in record.get("values", {}).items():
        namespace[name] = _decode(encoded)
    for name, outcomes in record.get("calls", {}).items():
        namespace[name] = _Replay(outcomes if isinstance(outcomes, list) else [])
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(hidden, "<hidden test>", "exec"), namespace)  # noqa: S102 - instructor's own test code
    except QuizCheckFailed as failure:
        return False, f"✗ {failure.question}: {failure.message}"
    except Exception as error:  # an answer of the wrong kind for the hidden check
        return False, f"✗ could not check this answer ({type(error).__name__}); make sure it has the form the question asks for"
    return True, printed.getvalue().strip() or "✓ correct"


class JudgeAnswers(_preprocessor_base()):  # type: ignore[misc]
    """After execution: judge the recorded answers in the grader, restore the source, write the outcome."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        hidden_by_cell = resources.get("ketamine_course", {}).get("hidden", {})
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if grade_id not in hidden_by_cell:
                continue
            original, hidden = hidden_by_cell[grade_id]
            records, outputs = _records(cell.get("outputs", []), grade_id)
            cell.source = original
            if any(o.get("output_type") == "error" for o in outputs):
                cell.outputs = outputs  # the visible check (or the cell) failed: already no credit
                continue
            if len(records) != 1:
                passed, message = False, "✗ no answer was recorded for the hidden tests (did the cell run to the end?)"
            else:
                passed, message = judge_hidden(hidden, records[0])
            if passed:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=message + "\n"))
            else:
                outputs.append(
                    nbformat.v4.new_output("error", ename="QuizCheckFailed", evalue=message, traceback=[message])
                )
            cell.outputs = outputs
        return nb, resources


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def autograde_preprocessors() -> list[Any]:
    """nbgrader's autograde pipeline with the answers recorded before execution and judged after it."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades

    from .sandbox import BoundedExecute

    return [RecordAnswers, BoundedExecute, JudgeAnswers, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]


class ReportTampering(_preprocessor_base()):  # type: ignore[misc]
    """First step of autograding (before nbgrader restores locked cells): report tampering.

    Compares the raw submission with ``release/`` and logs each finding as a
    warning, so that ``nbgrader autograde`` also prints the tamper report, and
    writes it to ``reports/tamper/<quiz>/<student>.json`` under the course root.
    """

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        info = resources.get("nbgrader", {})
        folder = Path(resources.get("metadata", {}).get("path", "."))
        root = folder.parents[2] if len(folder.parents) > 2 and folder.parents[1].name == "submitted" else None
        release = root / "release" / info.get("assignment", "") / f"{info.get('notebook', '')}.ipynb" if root else None
        if release is None or not release.is_file():
            return nb, resources
        findings = tamper_report(nb, nbformat.read(release, as_version=4))
        for finding in findings:
            self.log.warning("Tamper report: %s: %s: %s (%s)", info.get("student"), finding.grade_id, finding.problem, finding.detail)
        report = root / "reports" / "tamper" / info["assignment"] / f"{info.get('student')}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps([finding.__dict__ for finding in findings], indent=1))
        return nb, resources


def sanitize_preprocessors() -> list[Any]:
    """nbgrader's sanitizing step, with the tamper report first (it must see the raw submission)."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec

    return [ReportTampering, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]


def feedback_preprocessors() -> list[Any]:
    """Feedback shows the grades and the visible tests only."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    return [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]


def grading_config(course_root: Path, db_url: str | None = None, timeout_s: int = 30, sandbox: bool = True, notebook_timeout_s: float = 180):
    """The traitlets Config for nbgrader's in-process API (it does not read nbgrader_config.py).

    ``sandbox=False`` runs student code with the grader's rights: only for code you trust.
    """
    from traitlets.config import Config

    root = Path(course_root).resolve()
    config = Config()
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    config.Execute.timeout = timeout_s
    config.Execute.interrupt_on_timeout = True
    config.BoundedExecute.sandbox = sandbox
    config.BoundedExecute.notebook_timeout = float(notebook_timeout_s)
    config.Autograde.autograde_preprocessors = autograde_preprocessors()
    config.Autograde.sanitize_preprocessors = sanitize_preprocessors()
    config.GenerateFeedback.preprocessors = feedback_preprocessors()
    config.ClearHiddenTests.enforce_metadata = True
    return config


def find_course_root(start: Path | None = None) -> Path:
    """The folder holding ``nbgrader_config.py`` and ``source/``: ``start`` or a parent of it, else the repository."""
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents)
    candidates.append(Path(__file__).resolve().parents[2])
    for folder in candidates:
        if (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir():
            return folder
    raise FileNotFoundError("cannot find the course folder (with nbgrader_config.py and source/); run from inside it")


@contextlib.contextmanager
def _quiet_nbgrader():
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


def _api(config):
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


# --------------------------------------------------------------------------
# Tamper report
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TamperFinding:
    """One problem with a submission's nbgrader cells."""

    grade_id: str
    problem: str  # deleted, duplicated, edited, metadata stripped, type changed, added
    detail: str


def _nbgrader_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    return [(i, c) for i, c in enumerate(nb.cells) if "nbgrader" in c.get("metadata", {})]


def tamper_report(submitted: NotebookNode, release: NotebookNode) -> list[TamperFinding]:
    """Compare a submission's graded and locked cells with the release version.

    Reports cells deleted, duplicated, edited (locked cells), stripped of their
    nbgrader metadata, changed in type, or added with nbgrader metadata that the
    release does not have. nbgrader restores edited locked cells from the
    gradebook and gives no credit for missing ones; the report is for the
    instructor to review.
    """
    findings: list[TamperFinding] = []
    expected = {c.metadata.nbgrader["grade_id"]: c for _, c in _nbgrader_cells(release)}
    seen: dict[str, list[NotebookNode]] = {}
    for _, cell in _nbgrader_cells(submitted):
        seen.setdefault(cell.metadata.nbgrader.get("grade_id", "?"), []).append(cell)
    plain_sources = {c.source.strip(): c for c in submitted.cells if "nbgrader" not in c.get("metadata", {})}
    for grade_id, original in expected.items():
        meta = original.metadata.nbgrader
        copies = seen.get(grade_id, [])
        if not copies:
            if original.source.strip() and original.source.strip() in plain_sources:
                findings.append(TamperFinding(grade_id, "metadata stripped", "the cell is present but no longer marked for nbgrader"))
            else:
                findings.append(TamperFinding(grade_id, "deleted", f"the {'test' if meta.get('grade') else 'locked' if meta.get('locked') else 'answer'} cell is missing"))
            continue
        if len(copies) > 1:
            findings.append(TamperFinding(grade_id, "duplicated", f"{len(copies)} cells carry this id"))
        cell = copies[0]
        if cell.cell_type != original.cell_type:
            findings.append(TamperFinding(grade_id, "type changed", f"{original.cell_type} cell became {cell.cell_type}"))
        if meta.get("locked") and cell.source.strip() != original.source.strip():
            findings.append(TamperFinding(grade_id, "edited", "a locked cell was changed (nbgrader restores it from the gradebook)"))
        cell_meta = cell.metadata.nbgrader
        for flag in ("grade", "solution", "locked", "points"):
            if cell_meta.get(flag) != meta.get(flag):
                findings.append(TamperFinding(grade_id, "metadata edited", f"{flag} changed from {meta.get(flag)!r} to {cell_meta.get(flag)!r}"))
    for grade_id in seen:
        if grade_id not in expected:
            findings.append(TamperFinding(grade_id, "added", "a cell with nbgrader metadata that the quiz does not have"))
    return findings


# --------------------------------------------------------------------------
# Grading a class and grading oneself
# --------------------------------------------------------------------------


@dataclass
class SubmissionGrade:
    """The outcome of grading one student's quiz."""

    student_id: str
    score: float
    max_score: float
    seconds: float
    questions: dict[str, tuple[float, float]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    tampering: list[TamperFinding] = field(default_factory=list)
    needs_manual_grade: bool = False
    error: str | None = None


def _read_grades(config, quiz: str, student_id: str) -> tuple[float, float, dict[str, tuple[float, float]], bool]:
    from nbgrader.api import Gradebook

    with Gradebook(config.CourseDirectory.db_url, COURSE_ID) as gradebook:
        submission = gradebook.find_submission(quiz, student_id)
        questions = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                questions[grade.name] = (float(grade.score), float(grade.max_score))
        return float(submission.score), float(submission.max_score), questions, bool(submission.needs_manual_grade)


def _messages(autograded: Path) -> dict[str, str]:
    """What each test cell said (the visible check's or the hidden judgement's message)."""
    nb = nbformat.read(autograded, as_version=4)
    messages = {}
    for cell in nb.cells:
        grade_id = _grade_id(cell)
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


def _release_notebook(root: Path, quiz: str) -> NotebookNode:
    return nbformat.read(root / "release" / quiz / f"{quiz}.ipynb", as_version=4)


def grade_class(
    course_root: Path,
    quiz: str,
    students: Iterable[str] | None = None,
    db_url: str | None = None,
    timeout_s: int = 30,
    progress: Callable[[str], None] | None = print,
    sandbox: bool = True,
    notebook_timeout_s: float = 180,
) -> list[SubmissionGrade]:
    """Autograde every submission of ``quiz`` under ``submitted/`` in one process, recording each grade in the gradebook.

    Each notebook runs in the sandbox (see :mod:`ketamine_course.sandbox`); without
    bubblewrap this refuses to start unless ``sandbox=False`` is passed explicitly.
    """
    from .sandbox import require_sandbox

    if sandbox:
        require_sandbox()
    root = Path(course_root).resolve()
    config = grading_config(root, db_url, timeout_s, sandbox, notebook_timeout_s)
    api = _api(config)
    if students is None:
        students = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{quiz}") if p.is_dir())
    students = list(students)
    release = _release_notebook(root, quiz)
    results: list[SubmissionGrade] = []
    for number, student_id in enumerate(students, start=1):
        start = time.perf_counter()
        with _quiet_nbgrader():
            outcome = api.autograde(quiz, student_id, force=True, create=True)
        seconds = time.perf_counter() - start
        submitted_nb = root / "submitted" / student_id / quiz / f"{quiz}.ipynb"
        try:
            tampering = tamper_report(nbformat.read(submitted_nb, as_version=4), release)
        except Exception as error:  # an unreadable submission is itself a finding
            tampering = [TamperFinding("*", "unreadable", f"{type(error).__name__}: {error}")]
        if outcome.get("success"):
            score, max_score, questions, manual = _read_grades(config, quiz, student_id)
            messages = _messages(root / "autograded" / student_id / quiz / f"{quiz}.ipynb")
            result = SubmissionGrade(student_id, score, max_score, seconds, questions, messages, tampering, manual or bool(tampering))
        else:
            error = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()
            result = SubmissionGrade(student_id, 0.0, 0.0, seconds, tampering=tampering, needs_manual_grade=True, error=error[-1] if error else "failed")
        results.append(result)
        if progress:
            bar = "#" * round(20 * number / len(students))
            status = f"{result.score:g}/{result.max_score:g}" if result.error is None else f"FAILED ({result.error})"
            progress(f"[{bar:<20}] {number}/{len(students)} {student_id}: {status} in {seconds:.1f} s")
    return results


def summary_table(results: list[SubmissionGrade]) -> str:
    """A plain-text table of a class's grades, with review flags."""
    lines = [f"{'student':<20}{'score':>12}{'time (s)':>10}  review"]
    for r in results:
        flags = []
        if r.error:
            flags.append(f"grading failed: {r.error}")
        flags += [f"{t.grade_id}: {t.problem}" for t in r.tampering]
        if r.needs_manual_grade and not flags:
            flags.append("needs manual grading")
        lines.append(f"{r.student_id:<20}{f'{r.score:g}/{r.max_score:g}':>12}{r.seconds:>10.1f}  {'; '.join(flags)}")
    if results:
        mean = sum(r.score for r in results) / len(results)
        lines.append(f"{len(results)} submissions, mean score {mean:.2f}; {sum(1 for r in results if r.tampering or r.error)} flagged for review")
    return "\n".join(lines)


def tamper_text(results: list[SubmissionGrade]) -> str:
    """The tamper report: every submission whose nbgrader cells were changed, and how."""
    lines = ["Tamper report:"]
    for r in results:
        for finding in r.tampering:
            lines.append(f"  {r.student_id}: {finding.grade_id}: {finding.problem} ({finding.detail})")
    if len(lines) == 1:
        lines.append("  no graded or locked cell was edited, deleted, duplicated or stripped of its metadata")
    return "\n".join(lines)


@dataclass
class SelfGradeResult:
    """A self-learner's graded quiz."""

    grade: SubmissionGrade
    feedback_html: Path


def self_grade(
    quiz: str,
    notebook: Path | None = None,
    course_root: Path | None = None,
    feedback_dir: Path | None = None,
    timeout_s: int = 30,
    sandbox: bool | None = None,
) -> SelfGradeResult:
    """Grade one learner's quiz with nbgrader, without an instructor, and write a feedback page.

    Works in a scratch course folder: the release version is generated from
    ``source/`` there, the learner's notebook is submitted and autograded, and
    only the feedback page (which shows no solutions or hidden tests) is copied
    out, to ``feedback/<quiz>.html`` by default.

    ``sandbox=None`` (the default) isolates the kernel where bubblewrap is
    installed and otherwise runs it unsandboxed: the code is the learner's own
    (Binder images, for one, have no bubblewrap).
    """
    from .sandbox import sandbox_missing

    if sandbox is None:
        sandbox = not sandbox_missing()
    if quiz not in QUIZZES:
        raise ValueError(f"unknown quiz {quiz!r}; the quizzes are {', '.join(QUIZZES)}")
    root = find_course_root(course_root)
    notebook = Path(notebook) if notebook else root / "release" / quiz / f"{quiz}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    nbformat.read(notebook, as_version=4)  # fail early, clearly, on a file that is not a notebook
    with tempfile.TemporaryDirectory(prefix="ketamine-grade-") as scratch:
        course = Path(scratch)
        shutil.copytree(root / "source" / quiz, course / "source" / quiz)
        generate_release(course, quiz, db_url=f"sqlite:///{course / 'gradebook.db'}")
        target = course / "submitted" / "self" / quiz
        target.mkdir(parents=True)
        shutil.copy(notebook, target / f"{quiz}.ipynb")
        (grade,) = grade_class(course, quiz, ["self"], db_url=f"sqlite:///{course / 'gradebook.db'}", timeout_s=timeout_s, progress=None, sandbox=sandbox)
        config = grading_config(course, f"sqlite:///{course / 'gradebook.db'}", timeout_s, sandbox)
        with _quiet_nbgrader():
            _check(_api(config).generate_feedback(quiz, "self", force=True), "generate_feedback")
        out_dir = Path(feedback_dir) if feedback_dir else root / "feedback"
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / f"{quiz}.html"
        shutil.copy(course / "feedback" / "self" / quiz / f"{quiz}.html", page)
    return SelfGradeResult(grade, page)


# --------------------------------------------------------------------------
# Command line: ketamine-grade
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="ketamine-grade", description="Grade the course's quizzes with nbgrader.")
    commands = parser.add_subparsers(dest="command", required=True)
    mine = commands.add_parser("self", help="grade your own quiz and write a feedback page (no instructor needed)")
    mine.add_argument("quiz", choices=QUIZZES)
    mine.add_argument("notebook", nargs="?", type=Path, help="your notebook (default: release/QUIZ/QUIZ.ipynb)")
    mine.add_argument("--unsandboxed", action="store_true", help="run without isolation even where bubblewrap is installed (it is used when present)")
    klass = commands.add_parser("class", help="instructors: autograde every submission of a quiz in one process")
    klass.add_argument("quiz", choices=QUIZZES)
    klass.add_argument("--root", type=Path, default=None, help="course folder (default: the one holding nbgrader_config.py)")
    klass.add_argument("--unsandboxed", action="store_true", help="DANGEROUS: run students' code with your rights (only if bubblewrap cannot be installed and you trust the code)")
    release = commands.add_parser("release", help="maintainers: regenerate release/ from source/")
    release.add_argument("quizzes", nargs="*", metavar="QUIZ", help="default: all")
    args = parser.parse_args(argv)

    if args.command == "self":
        try:
            result = self_grade(args.quiz, args.notebook, sandbox=False if args.unsandboxed else None)
        except (FileNotFoundError, ValueError, RuntimeError) as error:
            print(f"ketamine-grade: {error}", file=sys.stderr)
            return 2
        grade = result.grade
        print(f"{args.quiz}: {grade.score:g} / {grade.max_score:g} points")
        for grade_id, (score, max_score) in grade.questions.items():
            message = grade.messages.get(grade_id, "")
            first = message.splitlines()[-1] if message else ""
            print(f"  {grade_id:<12} {score:g}/{max_score:g}  {first}")
        for finding in grade.tampering:
            print(f"  note: {finding.grade_id}: {finding.problem} ({finding.detail})")
        print(f"Feedback page: {result.feedback_html}")
        return 0
    if args.command == "class":
        from .sandbox import SandboxUnavailable

        root = find_course_root(args.root)
        if args.unsandboxed:
            print("ketamine-grade: WARNING: grading without isolation; students' code runs with your rights", file=sys.stderr)
        try:
            results = grade_class(root, args.quiz, sandbox=not args.unsandboxed)
        except SandboxUnavailable as error:
            print(f"ketamine-grade: {error}", file=sys.stderr)
            return 2
        print(summary_table(results))
        print(tamper_text(results))
        return 0
    root = find_course_root()
    unknown = [q for q in args.quizzes if q not in QUIZZES]
    if unknown:
        parser.error(f"unknown quiz {', '.join(unknown)}; choose from {', '.join(QUIZZES)}")
    for quiz in args.quizzes or QUIZZES:
        print(f"regenerated {generate_release(root, quiz)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
