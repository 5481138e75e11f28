"""Hidden tests: recorded in the student's kernel, judged in the grader.

A quiz test cell holds a visible check (runs in the kernel, as the student saw
it) and a hidden region between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` (the key).

* :class:`RecordAnswers` runs while nbgrader *sanitizes* a submission, right
  after nbgrader restores the test cells from the gradebook: it replaces each
  hidden region by one call to
  :func:`ketamine_course.grading.protocol.record_answers`. So the notebook that
  nbgrader writes to disk before execution, and the kernel that runs it, never
  hold hidden-test text.
* :class:`JudgeAnswers` runs after execution: it reads each hidden region from
  the gradebook (the instructor's copy), runs it in the grader's own process
  against the recorded values, restores the cell's source and writes the
  outcome as the cell's output (an error output when wrong, which nbgrader
  scores as zero).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..quiz import QuizCheckFailed
from .protocol import RECORD_MARKER, MalformedRecord, parse_record

__all__ = ["BEGIN_HIDDEN", "END_HIDDEN", "split_hidden", "kernel_inputs", "recorder_call", "judge_hidden", "RecordAnswers", "JudgeAnswers"]

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


def split_hidden(source: str) -> tuple[str, str | None]:
    """(visible part, hidden part or None) of a test cell's source."""
    if BEGIN_HIDDEN not in source:
        return source, None
    before, _, rest = source.partition(BEGIN_HIDDEN)
    hidden, _, after = rest.partition(END_HIDDEN)
    return before.rstrip("\n") + ("\n" + after.strip("\n") if after.strip() else ""), hidden.strip("\n")


def _grader_namespace() -> dict[str, Any]:
    from .. import data, dosing, evidence, pk, quiz, receptor

    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "__hidden_test__"}
    namespace.update({name: getattr(quiz, name) for name in quiz.__all__})
    namespace.update(dosing=dosing, pk=pk, receptor=receptor, evidence=evidence, data=data, load_table=data.load_table)
    return namespace


def kernel_inputs(hidden: str) -> tuple[list[str], dict[str, list[list[Any]]]]:
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
    names = [n for n in dict.fromkeys(loaded) if n not in bound and n not in grader_names and not hasattr(builtins, n) and n not in calls]
    return names, calls


def recorder_call(grade_id: str, hidden: str) -> str:
    """The one line that stands in the kernel for a hidden region."""
    names, calls = kernel_inputs(hidden)
    return (
        f'__import__("ketamine_course.grading.protocol", fromlist=["record_answers"])'
        f".record_answers({grade_id!r}, {names!r}, {json.dumps(calls)})"
    )


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id") if meta.get("grade") else None
    return grade_id if isinstance(grade_id, str) else None


class _RecordedError(Exception):
    pass


class _Replay:
    """Stands in for a student's function in the grader: returns what it returned in the kernel."""

    def __init__(self, outcomes: list[Any]) -> None:
        self._outcomes = [o for o in outcomes if isinstance(o, dict)]

    def __call__(self, *args: Any) -> Any:
        key = json.loads(json.dumps(list(args)))
        for outcome in self._outcomes:
            if outcome.get("args") == key:
                if "error" in outcome:
                    raise _RecordedError(str(outcome["error"])[:100])
                return _decode(outcome.get("result"))
        raise _RecordedError("NotRecorded")


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
    if kind in ("none", "missing"):
        return None
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int:
        return value
    if kind == "float" and isinstance(value, (int, float)) and type(value) is not bool:
        try:
            return float(value)
        except OverflowError:
            return _Unsupported("float")
    if kind == "nonfinite" and value in ("nan", "inf", "-inf"):
        return float(value)
    if kind == "str" and type(value) is str:
        return value
    return _Unsupported(str(encoded.get("name", kind))[:100])


def _records(outputs: list[NotebookNode], grade_id: str) -> tuple[list[dict[str, Any]], list[str], list[NotebookNode]]:
    """Pull this cell's record lines out of its stdout: (records, reasons lines were refused, remaining outputs)."""
    records: list[dict[str, Any]] = []
    refused: list[str] = []
    kept: list[NotebookNode] = []
    for output in outputs:
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        if not isinstance(text, str) or RECORD_MARKER not in text:
            kept.append(output)
            continue
        lines = []
        for line in text.splitlines(keepends=True):
            if not line.startswith(RECORD_MARKER):
                lines.append(line)
                continue
            try:
                payload = parse_record(line[len(RECORD_MARKER):])
            except MalformedRecord as reason:
                refused.append(str(reason))
                continue
            if payload.get("grade_id") == grade_id:
                records.append(payload)
        if lines:
            kept.append(nbformat.v4.new_output("stream", name=output.get("name", "stdout"), text="".join(lines)))
    return records, refused, kept


def judge_hidden(hidden: str, record: dict[str, Any]) -> tuple[bool, str]:
    """Run a hidden region in the grader against recorded answers: (passed, message shown to the student)."""
    namespace = _grader_namespace()
    for name, encoded in record.get("values", {}).items():
        if isinstance(name, str):
            namespace[name] = _decode(encoded)
    for name, outcomes in record.get("calls", {}).items():
        if isinstance(name, str):
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


def _preprocessor_base() -> type:
    from nbgrader.preprocessors import NbGraderPreprocessor

    return NbGraderPreprocessor


class RecordAnswers(_preprocessor_base()):  # type: ignore[misc]
    """While sanitizing, after nbgrader restored the test cells: swap each hidden region for a recorder call."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type != "code" or grade_id is None:
                continue
            visible, hidden = split_hidden(cell.source)
            if hidden is not None:
                cell.source = f"{visible}\n{recorder_call(grade_id, hidden)}"
        return nb, resources


def _hidden_regions(resources: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each test cell's (full source, hidden region), from the gradebook: the instructor's copy, never the submission."""
    from nbgrader.api import Gradebook

    info = resources.get("nbgrader", {})
    regions: dict[str, tuple[str, str]] = {}
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        for source_cell in notebook.source_cells:
            _, hidden = split_hidden(source_cell.source or "")
            if hidden is not None:
                regions[source_cell.name] = (source_cell.source, hidden)
    return regions


class JudgeAnswers(_preprocessor_base()):  # type: ignore[misc]
    """After execution: judge the recorded answers in the grader, restore the source, write the outcome."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        regions = _hidden_regions(resources)
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type != "code" or grade_id not in regions:
                continue
            original, hidden = regions[grade_id]
            records, refused, outputs = _records(cell.get("outputs", []), grade_id)
            cell.source = original
            if any(o.get("output_type") == "error" for o in outputs):
                cell.outputs = outputs  # the visible check (or the cell) failed: already no credit
                continue
            if len(records) != 1:
                reason = refused[0] if refused else "did the cell run to the end?"
                passed, message = False, f"✗ no answer could be read for the hidden tests ({reason})"
            else:
                passed, message = judge_hidden(hidden, records[0])
            if passed:
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=message + "\n"))
            else:
                outputs.append(nbformat.v4.new_output("error", ename="QuizCheckFailed", evalue=message, traceback=[message]))
            cell.outputs = outputs
        return nb, resources
