"""Hidden tests as nbgrader runs them, with the key kept in the grader.

A test cell holds a visible part (runs in the kernel, as the student saw it)
and a hidden region between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``.

The nbgrader steps named here live in :mod:`.adapters.preprocessors` and
:mod:`.adapters.execute`; this module is a pure core and imports nothing of
nbgrader.

* ``RecordAnswers`` runs while nbgrader *sanitizes* a submission, right
  after nbgrader restores the test cells from the gradebook: it replaces each
  hidden region by one call to
  :func:`ketamine_course.quiz.wire.record_answers` naming the values the
  hidden code reads. So the notebook nbgrader writes before execution, and the
  kernel that runs it, never hold hidden-test text.
* Right after the kernel runs such a cell, :func:`judge_cell` (called by
  ``BoundedExecute``, while the kernel
  is still alive) runs the hidden region **in the grader's process**: the
  student's values are rebuilt there as genuine objects; each call of a
  student's function is sent to the kernel and its result rebuilt the same
  way (so a hidden test may call functions on inputs it computes, in loops,
  through helpers); helpers defined in the visible part of the cell are
  defined in the grader too. The outcome is written as nbgrader would have
  seen it: what the hidden code and the student's functions print, an error
  output when it raises (the message only, never the hidden source), and the
  value of its last expression, which nbgrader reads as partial credit.
* ``JudgeAnswers`` runs after execution: it restores each test cell's
  source from the gradebook and marks any hidden test that could not be run
  (the kernel had died) as not passed.

**Only the grader decides a score.** What the kernel put in a test cell can
lower its score (an error, error output) but never raise it: every
``execute_result`` the kernel produced in a test cell becomes a plain display
(nbgrader reads the first ``execute_result`` of a test cell as partial credit,
and a student can make the kernel produce one), and each test cell's score,
the grader's **verdict**, is worked out by nbgrader's own rule from those
outputs and the judge's own, then kept in the grader (``resources``), never in
the notebook. ``SaveJudgedGrades`` records the verdicts in the gradebook
in place of nbgrader's ``SaveAutoGrades``, which would read the outputs again.

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
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..quiz import QuizCheckFailed
from ..quiz.checks import failure_words
from ..quiz.values import unsupported_parts
from ..quiz.wire import RECORD_MARKER, MalformedRecord, Unsupported, decode, encode, parse_record

__all__ = [
    "BEGIN_HIDDEN", "END_HIDDEN", "split_hidden", "kernel_inputs", "recorder_call", "judge_hidden", "judge_cell",
    "check_judgeable", "inert", "verdicts_of", "grade_id_of",
]

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
VERDICTS = "verdicts"
"""``resources["ketamine_course"][VERDICTS]``: grade id -> the score the grader gave the test cell."""
HIDDEN_FILENAME = "<hidden test>"
"""The file name the hidden code is compiled under (an assertion raised there shows its own message)."""
MAX_CALLS = 500
"""Calls of the student's functions one hidden test may make."""
MODULES = frozenset({
    "numpy", "numpy.testing", "pandas", "pandas.testing", "math", "statistics", "scipy", "scipy.stats", "cmath",
    "fractions", "decimal", "re", "string", "ketamine_course", "ketamine_course.data", "ketamine_course.dosing",
    "ketamine_course.pk", "ketamine_course.receptor", "ketamine_course.evidence", "ketamine_course.quiz",
    "ketamine_course.quiz.checks",
})
"""Modules a hidden test may use by the name the student's notebook gives them: exactly these (the grader imports its
own copy).

A module crosses from the kernel as a name only; the grader looks the name up
in this set and imports the set's own string, so no name the kernel sends is
ever imported (a module that runs code on import, ``numpy.f2py.__main__``
say, stays an unsupported value)."""


def split_hidden(source: str) -> tuple[str, str | None]:
    """(visible part, hidden part or None) of a test cell's source."""
    if BEGIN_HIDDEN not in source:
        return source, None
    before, _, rest = source.partition(BEGIN_HIDDEN)
    hidden, _, after = rest.partition(END_HIDDEN)
    return before.rstrip("\n") + ("\n" + after.strip("\n") if after.strip() else ""), hidden.strip("\n")


def _grader_namespace() -> dict[str, Any]:
    """The hidden code's own namespace before the student's names are added: Python's builtins, nothing of the course.

    The student's names are then added exactly as the student left them; a
    course helper is there only where the hidden test imports it, or where the
    student's own name holds it (then the grader's own copy stands in).
    """
    return {"__builtins__": builtins, "__name__": "__main__"}


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
    return [n for n in dict.fromkeys(loaded) if n not in bound and not n.startswith("__") and not hasattr(builtins, n)]


def recorder_call(grade_id: str, hidden: str, visible: str = "") -> str:
    """The one line that stands in the kernel for a hidden region."""
    return (
        f'__import__("ketamine_course.quiz.wire", fromlist=["record_answers"])'
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
        raise ValueError(
            f"cell {grade_id}: its hidden tests are not valid Python ({error.msg}, line {error.lineno})"
        ) from None
    tree = ast.parse(hidden)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            raise ValueError(
                f"cell {grade_id}: hidden tests cannot rebind the student's names (global/nonlocal); "
                "supported: reading the student's values and calling their functions"
            )
        if (
            isinstance(node, ast.Name)
            and node.id in ("globals", "locals", "vars", "get_ipython", "exec", "eval", "__import__")
            and isinstance(node.ctx, ast.Load)
        ):
            raise ValueError(
                f"cell {grade_id}: hidden tests cannot use {node.id}(): "
                "they run in the grader, not in the student's kernel; "
                "supported: asserts and comparisons on the student's values "
                "(numbers, strings, lists, tuples, dicts, sets, NumPy arrays, pandas objects), "
                "calls of the student's functions, helpers defined in the visible part of the cell, "
                "a last expression giving partial credit"
            )
    after = source.partition(END_HIDDEN)[2].strip()
    if after:
        try:
            ast.parse(after)
        except SyntaxError:
            return
        if any(
            isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in _bound_names(tree)
            for n in ast.walk(ast.parse(after))
        ):
            raise ValueError(
                f"cell {grade_id}: code after {END_HIDDEN} uses names the hidden tests define; "
                "move it inside the hidden region"
            )


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
            f'__import__("ketamine_course.quiz.wire", fromlist=["call"])'
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


_COURSE_MODULES = {name: name for name in MODULES if name.startswith("ketamine_course.")}


def course_helper(reference: object) -> Any:
    """The grader's own copy of a course helper the kernel names (``"ketamine_course.dosing:dose_mg"``), else None.

    Only a function defined in one of :data:`MODULES`' course modules, under
    the name it is defined by: the module's string is the set's own, and the
    name must be an identifier the module defines as such a function.
    """
    module_name, _, name = str(reference).partition(":")
    known = _COURSE_MODULES.get(module_name)
    if known is None or not name.isidentifier() or name.startswith("_"):
        return None
    helper = vars(importlib.import_module(known)).get(name)
    if not callable(helper) or isinstance(helper, type) or getattr(helper, "__qualname__", None) != name:
        return None
    home = str(getattr(helper, "__module__", ""))
    return helper if home.startswith("ketamine_course.") and home in _COURSE_MODULES else None


def _value(name: str, encoded: Any, calls: KernelCalls | None) -> Any:
    if isinstance(encoded, dict) and encoded.get("type") == "callable":
        helper = course_helper(encoded.get("course")) if encoded.get("course") else None
        if helper is not None:
            return helper
        return KernelFunction(name, calls) if calls is not None else Unsupported("function")
    if isinstance(encoded, dict) and encoded.get("type") == "module":
        # the set's own string, never the kernel's
        known = {name: name for name in MODULES}.get(str(encoded.get("name", "")))
        if known is None:
            return Unsupported("module")
        try:
            return importlib.import_module(known)
        except ImportError:
            return Unsupported("module")
    return decode(encoded)


def _error(ename: str, message: str) -> NotebookNode:
    """An error output as nbgrader scores it (its kind kept for nbgrader); what it shows is the message alone, in
    words (never the name of one of the grader's classes)."""
    return nbformat.v4.new_output("error", ename=ename, evalue=message, traceback=[message or ename])


def _assertion_message(error: AssertionError) -> str:
    """What the feedback says of a failed assertion: the hidden test's own message, never a library's.

    An ``assert ..., "message"`` written in the hidden test shows its message
    (the instructor wrote it for the student). An assertion raised anywhere
    else (``numpy.testing``, ``pandas.testing``, a helper) writes both values
    compared into its message, the key among them, so only where it came from
    is said.
    """
    frames = traceback.extract_tb(error.__traceback__)
    if frames and frames[-1].filename == HIDDEN_FILENAME:
        return f"✗ a hidden test failed{': ' + str(error) if str(error) else ''}"
    origin = error.__traceback__
    while origin is not None and origin.tb_next is not None:
        origin = origin.tb_next
    module = origin.tb_frame.f_globals.get("__name__", "") if origin is not None else ""
    where = f" in {module.split('.')[0]}" if module and module != "__main__" else ""
    return (
        f"✗ a hidden test failed: the values it compared differ (an assertion{where}; "
        "its details are not shown, as they hold the expected value)"
    )


DETAIL = "judge_detail"
"""``cell.metadata["ketamine_course"][DETAIL]``: why a hidden test failed, in full, for the instructor (the author's
check reads it from the autograded notebook, which holds the hidden tests anyway); feedback drops it
(:func:`~.adapters.preprocessors.drop_judge_details`)."""


def _detail(error: BaseException, hidden: str) -> str:
    """Why a hidden test failed, in full, for its author: the line of the hidden test and the exception's own text."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == HIDDEN_FILENAME]
    lines = hidden.splitlines()
    where = ""
    if frames and frames[-1].lineno and 0 < frames[-1].lineno <= len(lines):
        where = f"hidden line {frames[-1].lineno} `{lines[frames[-1].lineno - 1].strip()[:200]}`: "
    text = str(error).strip()
    return f"{where}{type(error).__name__}{': ' + text[:1500] if text else ''}"


def _unreadable(values: dict[str, Any]) -> list[str]:
    """``["answer_q3 (a Patient object)"]``: the student's values the grader could not rebuild."""
    return [f"{name} (a {', '.join(parts)})" for name, value in values.items() if (parts := unsupported_parts(value))]


def _warnings_text(caught: list[warnings.WarningMessage]) -> str:
    """Warnings raised while the hidden code ran, as Python writes them to stderr (where nbgrader reads them)."""
    return "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno, line="") for w in caught
    )


def judge_hidden(
    hidden: str, record: dict[str, Any], visible: str = "", calls: KernelCalls | None = None,
    details: list[str] | None = None,
) -> list[NotebookNode]:
    """Run a hidden region in the grader against a record: the outputs nbgrader would have seen from it.

    Failing, the full reason for the instructor is appended to ``details``
    (:data:`DETAIL`); the outputs, which a student sees, never hold an
    expected value.
    """
    namespace = _grader_namespace()
    exec(compile(_visible_definitions(visible), "<visible part>", "exec"), namespace)  # noqa: S102 - instructor's code
    values = record.get("values")
    values = values if isinstance(values, dict) else {}  # a forged record may hold anything
    # only the names the hidden code reads: never a builtin
    student = {
        name: _value(name, values.get(name, {"type": "missing"}), calls) for name in kernel_inputs(hidden, visible)
    }
    namespace.update(student)
    tree = ast.parse(hidden)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    assert last is None or isinstance(last, ast.Expr)
    printed, errors = io.StringIO(), io.StringIO()
    outputs: list[NotebookNode] = []
    result: Any = None
    failure: BaseException | None = None
    unreadable: list[str] | None = None
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            try:
                exec(compile(tree, HIDDEN_FILENAME, "exec"), namespace)  # noqa: S102 - instructor's own test code
                if last is not None:
                    result = eval(compile(ast.Expression(last.value), HIDDEN_FILENAME, "eval"), namespace)  # noqa: S307
            finally:
                errors.write(_warnings_text(caught))
    except QuizCheckFailed as error:
        failure = error
        outputs.append(_error("QuizCheckFailed", f"✗ {error.question}: {error.message}"))
    except StudentError as error:
        failure = error
        outputs.append(_error("StudentError", f"✗ a hidden test called your function and it {failure_words(error)}"))
    except AssertionError as error:
        failure = error
        outputs.append(_error("AssertionError", _assertion_message(error)))
    except Exception as error:  # the hidden test could not use the answer: no credit, and the kind of problem
        failure = error
        unreadable = _unreadable(student)  # said to the student, and to the author below
        outputs.append(_error(
            type(error).__name__,
            f"✗ a hidden test could not use your answer ({type(error).__name__}); "
            + (f"the grader cannot read {', '.join(unreadable)}: give the kind of value the question asks for"
               if unreadable else "check it has the form the question asks for"),
        ))
    if failure is not None and details is not None:
        unreadable = _unreadable(student) if unreadable is None else unreadable
        details.append(_detail(failure, hidden) + (
            f" (the grader could not rebuild {', '.join(unreadable)})" if unreadable else ""))
    if calls is not None:
        outputs = calls.outputs + outputs
    streams = [("stdout", printed.getvalue()), ("stderr", errors.getvalue())]
    at = len(calls.outputs) if calls is not None else 0
    for name, text in reversed(streams):
        if text:
            outputs.insert(at, nbformat.v4.new_output("stream", name=name, text=text))
    if not any(o.output_type == "error" for o in outputs) and result is not None:
        outputs.append(
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(result)}, execution_count=None)
        )
    return outputs


def _records(
    outputs: list[NotebookNode], grade_id: str, call: int | None = None
) -> tuple[list[dict[str, Any]], list[str], list[NotebookNode]]:
    """Pull this cell's record lines (or one call's) out of its stdout: (records, reasons lines were refused, other
    outputs)."""
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


def _wrote_stderr(outputs: list[NotebookNode]) -> bool:
    """Whether a test cell that raised nothing wrote to stderr (nbgrader then gives it no credit)."""
    wrote = any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs)
    return wrote and not any(o.get("output_type") == "error" for o in outputs)


def _explain(outputs: list[NotebookNode]) -> list[NotebookNode]:
    """A line saying why nbgrader gives no credit when the test cell wrote to stderr during a passing test."""
    failed = any(o.get("output_type") == "error" for o in outputs)
    if _wrote_stderr(outputs):
        return [nbformat.v4.new_output(
            "stream", name="stdout",
            text="✗ something wrote to stderr while this question was tested (a warning?): "
            "nbgrader gives no credit for a test cell with "
            "error output, so this question scores 0 and is flagged for your instructor to review\n",
        )]
    if not failed:
        return [nbformat.v4.new_output("stream", name="stdout", text="✓ the hidden tests passed\n")]
    return []


def inert(outputs: list[NotebookNode]) -> list[NotebookNode]:
    """The kernel's outputs of a test cell, with every ``execute_result`` made a plain display: never read as partial
    credit."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "execute_result":
            output = nbformat.v4.new_output("display_data", data=dict(output.get("data", {})))
        kept.append(output)
    return kept


def judge_cell(
    cell: NotebookNode, grade_id: str, visible: str, hidden: str,
    run_in_kernel: Callable[[str], list[NotebookNode]] | None,
) -> bool:
    """Judge an executed test cell's hidden region in place (its outputs become what nbgrader scores); True when its
    code wrote to stderr during a passing test.

    The cell's score is then nbgrader's rule applied to these outputs
    (:func:`ketamine_course.grading.adapters.preprocessors.verdict`).
    """
    records, refused, outputs = _records(inert(cell.get("outputs", [])), grade_id)
    if isinstance(cell.get("metadata", {}).get("ketamine_course"), dict):
        cell.metadata["ketamine_course"].pop(DETAIL, None)  # only the judge writes it
    stderr = False
    if any(o.get("output_type") == "error" for o in outputs):
        cell.outputs = outputs  # the visible part failed: the hidden tests never ran (as in nbgrader)
    elif len(records) != 1:
        reason = refused[0] if refused else "did the cell run to the end?"
        cell.outputs = outputs + [
            _error("QuizCheckFailed", f"✗ no answer could be read for the hidden tests ({reason})")
        ]
    else:
        calls = KernelCalls(grade_id, run_in_kernel) if run_in_kernel is not None else None
        details: list[str] = []
        judged = judge_hidden(hidden, records[0], visible, calls, details)
        if details:
            cell.metadata.setdefault("ketamine_course", {})[DETAIL] = details[0]
        # the judge's own: the hidden test's last value
        partial = [o for o in judged if o.get("output_type") == "execute_result"]
        # what the student's functions and the hidden code printed
        rest = inert([o for o in judged if o.get("output_type") != "execute_result"])
        stderr = _wrote_stderr(outputs + rest)
        note = _explain(outputs + rest) if not partial or stderr else []
        cell.outputs = outputs + rest + note + partial
    return stderr


def grade_id_of(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id") if meta.get("grade") else None
    return grade_id if isinstance(grade_id, str) else None


def verdicts_of(resources: dict[str, Any]) -> dict[str, float]:
    """The grader's verdicts of this submission (kept in ``resources``, which the kernel never reaches)."""
    verdicts: dict[str, float] = resources.setdefault("ketamine_course", {}).setdefault(VERDICTS, {})
    return verdicts
