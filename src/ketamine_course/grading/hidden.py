"""Hidden tests as nbgrader runs them, with the key kept in the grader.

A test cell holds a visible part (runs in the kernel, as the student saw it)
and a hidden region between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``.

* :class:`RecordAnswers` runs while nbgrader *sanitizes* a submission, right
  after nbgrader restores the test cells from the gradebook: it replaces each
  hidden region by one call to
  :func:`ketamine_course.grading.protocol.record_answers` naming the values the
  hidden code reads. So the notebook nbgrader writes before execution, and the
  kernel that runs it, never hold hidden-test text.
* Right after the kernel runs such a cell, :func:`judge_cell` (called by
  :class:`~ketamine_course.grading.execute.BoundedExecute`, while the kernel
  is still alive) runs the hidden region **in the grader's process**: the
  student's values are rebuilt there as genuine objects; each call of a
  student's function is sent to the kernel and its result rebuilt the same
  way (so a hidden test may call functions on inputs it computes, in loops,
  through helpers); helpers defined in the visible part of the cell are
  defined in the grader too. The outcome is written as nbgrader would have
  seen it: what the hidden code and the student's functions print, an error
  output when it raises (the message only, never the hidden source), and the
  value of its last expression, which nbgrader reads as partial credit.
* :class:`JudgeAnswers` runs after execution: it restores each test cell's
  source from the gradebook and marks any hidden test that could not be run
  (the kernel had died) as not passed.

:func:`check_judgeable` is run when a quiz is generated: a hidden region the
judge cannot run faithfully is refused then, naming the cell.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import json
from collections.abc import Callable
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..quiz import QuizCheckFailed
from .protocol import RECORD_MARKER, MalformedRecord, Unsupported, decode, encode, parse_record

__all__ = [
    "BEGIN_HIDDEN", "END_HIDDEN", "split_hidden", "kernel_inputs", "recorder_call", "judge_hidden", "judge_cell",
    "check_judgeable", "RecordAnswers", "JudgeAnswers", "CheckJudgeable", "hidden_regions",
]

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
JUDGED = "ketamine_course_judged"
"""Cell metadata key set on a test cell once its hidden region was judged (removed again by :class:`JudgeAnswers`)."""
MAX_CALLS = 500
"""Calls of the student's functions one hidden test may make."""
MODULES = frozenset({"numpy", "pandas", "math", "statistics", "scipy", "ketamine_course", "cmath", "fractions", "decimal", "re", "string"})
"""Modules a hidden test may use by the name the student's notebook gives them (the grader imports its own copy)."""


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


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def _visible_definitions(visible: str) -> ast.Module:
    """The visible part's top-level definitions and imports: instructor code the grader defines too."""
    try:
        tree = ast.parse(visible)
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])
    return ast.Module(body=[node for node in tree.body if isinstance(node, _DEFINITIONS)], type_ignores=[])


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def kernel_inputs(hidden: str, visible: str = "") -> list[str]:
    """Names the hidden code (and the visible part's helpers it uses) reads from the student's namespace."""
    definitions = _visible_definitions(visible)
    trees = [ast.parse(hidden), definitions]
    loaded = [n.id for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    bound = _bound_names(trees[0]) | _bound_names(definitions)
    grader = set(_grader_namespace())
    return [n for n in dict.fromkeys(loaded) if n not in bound and n not in grader and not hasattr(builtins, n)]


def recorder_call(grade_id: str, hidden: str, visible: str = "") -> str:
    """The one line that stands in the kernel for a hidden region."""
    return (
        f'__import__("ketamine_course.grading.protocol", fromlist=["record_answers"])'
        f".record_answers({grade_id!r}, {kernel_inputs(hidden, visible)!r})"
    )


def check_judgeable(grade_id: str, source: str) -> None:
    """Refuse (ValueError naming the cell) a hidden region the judge cannot run as nbgrader would."""
    visible, hidden = split_hidden(source)
    if hidden is None:
        return
    try:
        ast.parse(hidden)
    except SyntaxError as error:
        raise ValueError(f"cell {grade_id}: its hidden tests are not valid Python ({error.msg}, line {error.lineno})") from None
    tree = ast.parse(hidden)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            raise ValueError(f"cell {grade_id}: hidden tests cannot rebind the student's names (global/nonlocal); supported: reading the student's values and calling their functions")
        if isinstance(node, ast.Name) and node.id in ("globals", "locals", "vars", "get_ipython", "exec", "eval", "__import__") and isinstance(node.ctx, ast.Load):
            raise ValueError(
                f"cell {grade_id}: hidden tests cannot use {node.id}(): they run in the grader, not in the student's kernel; "
                "supported: asserts and comparisons on the student's values (numbers, strings, lists, tuples, dicts, sets, NumPy arrays, pandas objects), "
                "calls of the student's functions, helpers defined in the visible part of the cell, a last expression giving partial credit"
            )
    after = source.partition(END_HIDDEN)[2].strip()
    if after:
        try:
            ast.parse(after)
        except SyntaxError:
            return
        if any(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in _bound_names(tree) for n in ast.walk(ast.parse(after))):
            raise ValueError(f"cell {grade_id}: code after {END_HIDDEN} uses names the hidden tests define; move it inside the hidden region")


# --------------------------------------------------------------------------
# Judging in the grader, calling back into the kernel
# --------------------------------------------------------------------------


class StudentError(Exception):
    """A student's function raised while a hidden test called it (its kind and message, as data)."""


class KernelCalls:
    """Calls of a student's functions, made in the kernel for the grader; their outputs are collected for the cell."""

    def __init__(self, grade_id: str, run_in_kernel: Callable[[str], list[NotebookNode]]) -> None:
        self.grade_id = grade_id
        self.run_in_kernel = run_in_kernel
        self.count = 0
        self.outputs: list[NotebookNode] = []

    def __call__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.count += 1
        if self.count > MAX_CALLS:
            raise StudentError(f"the hidden tests called your functions more than {MAX_CALLS} times")
        payload = json.dumps({"args": encode(list(args)), "kwargs": encode(dict(kwargs))})
        code = (
            f'__import__("ketamine_course.grading.protocol", fromlist=["call"])'
            f".call({self.grade_id!r}, {self.count}, {name!r}, {payload!r})"
        )
        records, _, outputs = _records(self.run_in_kernel(code), self.grade_id, call=self.count)
        self.outputs += outputs
        if len(records) != 1:
            raise StudentError("your function's result could not be read (did it stop the kernel?)")
        record = records[0]
        if "error" in record:
            raise StudentError(f"{str(record['error'])[:100]}: {str(record.get('message', ''))[:300]}")
        return decode(record.get("result"))


class KernelFunction:
    """Stands in for a student's function in the grader: each call runs the real function in the kernel."""

    def __init__(self, name: str, calls: KernelCalls) -> None:
        self.__name__ = name
        self._calls = calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._calls(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"


def _value(name: str, encoded: Any, calls: KernelCalls | None) -> Any:
    if isinstance(encoded, dict) and encoded.get("type") == "callable":
        return KernelFunction(name, calls) if calls is not None else Unsupported("function")
    if isinstance(encoded, dict) and encoded.get("type") == "module":
        module = str(encoded.get("name", ""))
        if module.split(".")[0] in MODULES:
            try:
                return importlib.import_module(module)
            except ImportError:
                return Unsupported("module")
        return Unsupported("module")
    return decode(encoded)


def _error(ename: str, message: str) -> NotebookNode:
    text = f"{ename}: {message}" if message else ename
    return nbformat.v4.new_output("error", ename=ename, evalue=message, traceback=[text])


def judge_hidden(hidden: str, record: dict[str, Any], visible: str = "", calls: KernelCalls | None = None) -> list[NotebookNode]:
    """Run a hidden region in the grader against a record: the outputs nbgrader would have seen from it."""
    namespace = _grader_namespace()
    exec(compile(_visible_definitions(visible), "<visible part>", "exec"), namespace)  # noqa: S102 - instructor's code
    values = record.get("values", {})
    for name in kernel_inputs(hidden, visible):  # only the names the hidden code reads: never a builtin or the grader's own
        namespace[name] = _value(name, values.get(name, {"type": "missing"}), calls)
    tree = ast.parse(hidden)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    assert last is None or isinstance(last, ast.Expr)
    printed = io.StringIO()
    outputs: list[NotebookNode] = []
    result: Any = None
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(tree, "<hidden test>", "exec"), namespace)  # noqa: S102 - instructor's own test code
            if last is not None:
                result = eval(compile(ast.Expression(last.value), "<hidden test>", "eval"), namespace)  # noqa: S307
    except QuizCheckFailed as failure:
        outputs.append(_error("QuizCheckFailed", f"✗ {failure.question}: {failure.message}"))
    except StudentError as error:
        outputs.append(_error("StudentError", f"✗ a hidden test called your function and it failed: {error}"))
    except AssertionError as error:
        outputs.append(_error("AssertionError", f"✗ a hidden test failed{': ' + str(error) if str(error) else ''}"))
    except Exception as error:  # the hidden test could not use the answer: no credit, and the kind of problem
        outputs.append(_error(type(error).__name__, f"✗ a hidden test could not use your answer ({type(error).__name__}); check it has the form the question asks for"))
    if calls is not None:
        outputs = calls.outputs + outputs
    text = printed.getvalue()
    if text:
        outputs.insert(len(calls.outputs) if calls is not None else 0, nbformat.v4.new_output("stream", name="stdout", text=text))
    if not any(o.output_type == "error" for o in outputs) and result is not None:
        outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(result)}, execution_count=None))
    return outputs


def _records(outputs: list[NotebookNode], grade_id: str, call: int | None = None) -> tuple[list[dict[str, Any]], list[str], list[NotebookNode]]:
    """Pull this cell's record lines (or one call's) out of its stdout: (records, reasons lines were refused, other outputs)."""
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
            if payload.get("grade_id") == grade_id and payload.get("call") == call:
                records.append(payload)
        if lines:
            kept.append(nbformat.v4.new_output("stream", name=output.get("name", "stdout"), text="".join(lines)))
    return records, refused, kept


def _explain(outputs: list[NotebookNode]) -> list[NotebookNode]:
    """A line saying why nbgrader gives no credit when the student's code wrote to stderr during a passing test."""
    wrote_stderr = any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs)
    failed = any(o.get("output_type") == "error" for o in outputs)
    if wrote_stderr and not failed:
        return [nbformat.v4.new_output(
            "stream", name="stdout",
            text="✗ your code wrote to stderr while it was tested (a warning?): nbgrader gives no credit for a test cell with "
            "error output, so this question scores 0 and is flagged for your instructor to review\n",
        )]
    if not failed:
        return [nbformat.v4.new_output("stream", name="stdout", text="✓ the hidden tests passed\n")]
    return []


def judge_cell(cell: NotebookNode, grade_id: str, visible: str, hidden: str, run_in_kernel: Callable[[str], list[NotebookNode]] | None) -> bool:
    """Judge an executed test cell's hidden region in place; True when its code wrote to stderr during a passing test."""
    records, refused, outputs = _records(cell.get("outputs", []), grade_id)
    cell.metadata[JUDGED] = True
    if any(o.get("output_type") == "error" for o in outputs):
        cell.outputs = outputs  # the visible part failed: the hidden tests never ran (as in nbgrader)
        return False
    if len(records) != 1:
        reason = refused[0] if refused else "did the cell run to the end?"
        cell.outputs = outputs + [_error("QuizCheckFailed", f"✗ no answer could be read for the hidden tests ({reason})")]
        return False
    calls = KernelCalls(grade_id, run_in_kernel) if run_in_kernel is not None else None
    judged = judge_hidden(hidden, records[0], visible, calls)
    partial = [o for o in judged if o.get("output_type") == "execute_result"]
    rest = [o for o in judged if o.get("output_type") != "execute_result"]
    note = _explain(outputs + rest) if not partial else []
    cell.outputs = outputs + rest + note + partial
    return bool(note) and "stderr" in note[0].get("text", "")


def hidden_regions(resources: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Each test cell's (full source, visible part, hidden region), from the gradebook: the instructor's copy, never the submission."""
    from nbgrader.api import Gradebook

    info = resources.get("nbgrader", {})
    regions: dict[str, tuple[str, str, str]] = {}
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        for source_cell in notebook.source_cells:
            visible, hidden = split_hidden(source_cell.source or "")
            if hidden is not None:
                regions[source_cell.name] = (source_cell.source, visible, hidden)
    return regions


# --------------------------------------------------------------------------
# nbgrader preprocessors
# --------------------------------------------------------------------------


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id") if meta.get("grade") else None
    return grade_id if isinstance(grade_id, str) else None


def _preprocessor_base() -> type:
    from nbgrader.preprocessors import NbGraderPreprocessor

    return NbGraderPreprocessor


class CheckJudgeable(_preprocessor_base()):  # type: ignore[misc]
    """When a quiz is generated: refuse a hidden region the judge cannot run as nbgrader would, naming the cell."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type == "code" and grade_id is not None:
                check_judgeable(grade_id, cell.source)
        return nb, resources


class RecordAnswers(_preprocessor_base()):  # type: ignore[misc]
    """While sanitizing, after nbgrader restored the test cells: swap each hidden region for a recorder call."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type != "code" or grade_id is None:
                continue
            visible, hidden = split_hidden(cell.source)
            if hidden is not None:
                cell.source = f"{visible}\n{recorder_call(grade_id, hidden, visible)}"
        return nb, resources


class JudgeAnswers(_preprocessor_base()):  # type: ignore[misc]
    """After execution: restore each test cell's source; a hidden test that never ran earns nothing."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        regions = hidden_regions(resources)
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if cell.cell_type != "code" or grade_id not in regions:
                continue
            original, visible, hidden = regions[grade_id]
            if not cell.metadata.pop(JUDGED, False):
                judge_cell(cell, grade_id, visible, hidden, run_in_kernel=None)
                cell.metadata.pop(JUDGED, None)
            cell.source = original
        return nb, resources
