"""The author's check: does a quiz grade what its author means?

``ketamine-grade check QUIZ`` grades, with the course's own pipeline, in a
scratch course: the solution (must earn full marks), a blank copy (must earn
zero) and, for each answer cell, the solution with that one answer made wrong
(must lose exactly the points of the test cells that read it, and nothing
else). A hidden test the judge would refuse is reported first.

Wrong answers are made without knowing the quiz: after the solution, every
name the answer cell defines is passed through :func:`perturb` in the kernel
(numbers scaled and shifted, a letter changed, strings and containers changed,
a function's results perturbed). This module is imported by that kernel, so
it does not import nbgrader at module level.
"""

from __future__ import annotations

import ast
import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["perturb", "CheckLine", "author_check", "check_text", "recognises_wrong_values"]


def perturb(value: Any) -> Any:
    """A wrong version of an answer value, of the same kind where possible."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 1.5 + 1
    if isinstance(value, str):
        if len(value) == 1 and value.isalpha():
            return "B" if value.upper() == "A" else "A"
        return value + " (changed)"
    if isinstance(value, (list, tuple)):
        return type(value)([*value, None])
    if isinstance(value, dict):
        return {**value, "__changed__": None}
    if isinstance(value, (set, frozenset)):
        return type(value)([*value, "__changed__"])
    if callable(value) and not isinstance(value, type):
        function = value

        def wrong(*args: Any, **kwargs: Any) -> Any:
            return perturb(function(*args, **kwargs))

        wrong.__name__ = getattr(function, "__name__", "wrong")
        return wrong
    try:  # NumPy arrays, pandas objects
        return value * 1.5 + 1
    except Exception:
        return None


def _defined_names(code: str) -> list[str]:
    """Top-level names an answer cell assigns or defines."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def _read_names(code: str) -> set[str]:
    """Names a test cell reads from the student's namespace (loaded, and not bound by the cell itself)."""
    import builtins

    from .hidden import _bound_names

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return {n for n in loaded - _bound_names(tree) if not hasattr(builtins, n)}


def _wrong(solution: str) -> str:
    names = _defined_names(solution)
    lines = [
        f"{name} = __import__('ketamine_course.grading.check', fromlist=['perturb']).perturb({name})" for name in names
    ]
    return solution + "\n" + "\n".join(lines)


@dataclass(frozen=True)
class CheckLine:
    """One graded copy of the quiz and whether it scored what the author means."""

    copy: str
    score: float
    expected: str
    ok: bool
    detail: str = ""


def recognises_wrong_values(visible: str) -> bool:
    """True if a test cell's visible part names slips by the fingerprint of their wrong values
    (``check_number(..., slips=...)``).

    A student can try numbers against such a check until it names the slip,
    and a slip's wrong value is the answer times a known factor.

    >>> recognises_wrong_values('check_number("q1", a, "mg", (5, 200), slips={"pounds_as_kg": "20"})')
    True
    >>> recognises_wrong_values('check_number("q3", a, "mL/h", (1, 30), scale_slips={"per_minute": 0.0167})')
    False
    """
    try:
        tree = ast.parse(visible)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Call) and any(k.arg == "slips" for k in node.keywords)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "check_number"
        for node in ast.walk(tree)
    )


def test_reasons(notebook: Any) -> dict[str, str]:
    """Why each test cell of a graded notebook lost its points, for the quiz's author: grade id -> reason.

    The reason is the judge's full one where it left one (the hidden test's
    line and the exception's own text, values compared included), else what
    the cell showed: its error, or that something wrote to stderr.
    """
    from .hidden import DETAIL, grade_id_of

    reasons: dict[str, str] = {}
    for cell in notebook.cells:
        grade_id = grade_id_of(cell)
        if grade_id is None or cell.cell_type != "code":
            continue
        detail = cell.get("metadata", {}).get("ketamine_course", {}).get(DETAIL)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                reasons[grade_id] = str(detail or f"{output.get('ename', '')}: {output.get('evalue', '')}")
                break
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                reasons[grade_id] = f"wrote to stderr (nbgrader scores the cell 0): {str(output.get('text', ''))[:300]}"
                break
    return reasons


def _explained(scores: dict[str, float], tests: dict[str, tuple[float, set[str]]], reasons: dict[str, str],
               kept: list[str] | None = None) -> str:
    """Each test cell that scored other than meant, with its score and why."""
    parts = []
    for test_id, (points, _) in tests.items():
        score = scores.get(test_id, 0.0)
        if kept is not None and test_id in kept:
            if score > 0:
                parts.append(f"{test_id} {score:g}/{points:g} (still earns points with this answer wrong)")
            continue
        if score < points:
            parts.append(f"{test_id} {score:g}/{points:g}: {reasons.get(test_id, 'no reason recorded')}")
    return "; ".join(part.replace("; ", ", ") for part in parts)


def _meta(cell: Any) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def author_check(course_root: Path, quiz: str, sandbox: bool | None = None) -> list[CheckLine]:
    """Grade the solution, a blank copy and one wrong answer per answer cell; say for each whether it scored as
    meant."""
    import shutil

    import nbformat

    from .hidden import check_judgeable, split_hidden
    from .run import generate_release, grade_class

    root = Path(course_root).resolve()
    source = nbformat.read(root / "source" / quiz / f"{quiz}.ipynb", as_version=4)
    lines: list[CheckLine] = []
    for cell in source.cells:
        if _meta(cell).get("grade") and cell.cell_type == "code":
            try:
                check_judgeable(str(_meta(cell).get("grade_id")), cell.source)
            except ValueError as refusal:
                lines.append(CheckLine("hidden tests", 0.0, "judgeable", False, str(refusal)))
    if lines:
        return lines
    for cell in source.cells:
        if (
            _meta(cell).get("grade") and cell.cell_type == "code"
            and recognises_wrong_values(split_hidden(cell.source)[0])
        ):
            detail = (
                "its visible check passes fingerprints of wrong values (slips=...), "
                "which a student could search by trying numbers; "
                "they are ignored now: name the slip in the hidden test instead, "
                "grade_number(..., slips={...: wrong_value})"
            )
            lines.append(CheckLine(str(_meta(cell).get("grade_id")), 0.0, "no wrong value recognised", False, detail))
    solutions = {}
    for cell in source.cells:
        if _meta(cell).get("solution") and cell.cell_type == "code":
            solutions[_meta(cell)["grade_id"]] = "\n".join(
                line for line in cell.source.splitlines()
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
    tests = {}
    for cell in source.cells:
        if _meta(cell).get("grade") and cell.cell_type == "code":
            visible, hidden = split_hidden(cell.source)
            tests[_meta(cell)["grade_id"]] = (
                float(_meta(cell).get("points", 0)), _read_names(f"{visible}\n{hidden or ''}")
            )
    with tempfile.TemporaryDirectory(prefix="ketamine-check-") as scratch:
        course = Path(scratch)
        db = f"sqlite:///{course / 'gradebook.db'}"
        shutil.copytree(root / "source" / quiz, course / "source" / quiz)
        generate_release(course, quiz, db_url=db)
        release = nbformat.read(course / "release" / quiz / f"{quiz}.ipynb", as_version=4)
        copies: dict[str, dict[str, str]] = {"solution": solutions, "blank": {}}
        for answer_id, solution in solutions.items():
            copies[f"wrong-{answer_id}"] = {**solutions, answer_id: _wrong(solution)}
        for name, answers in copies.items():
            nb = copy.deepcopy(release)
            for cell in nb.cells:
                if _meta(cell).get("grade_id") in answers:
                    cell.source = answers[_meta(cell)["grade_id"]]
            (course / "submitted" / name / quiz).mkdir(parents=True)
            nbformat.write(nb, course / "submitted" / name / quiz / f"{quiz}.ipynb")
        results = {
            r.student_id: r
            for r in grade_class(
                course, quiz, list(copies), db_url=db, progress=None, sandbox=sandbox, config_root=root
            )
        }
        reasons: dict[str, dict[str, str]] = {}
        for name in copies:
            graded_path = course / "autograded" / name / quiz / f"{quiz}.ipynb"
            reasons[name] = test_reasons(nbformat.read(graded_path, as_version=4)) if graded_path.exists() else {}
    full = sum(points for points, _ in tests.values())
    graded = results["solution"]
    solution_ok = graded.score == full and not graded.error
    lines.append(CheckLine(
        "solution", graded.score, f"{full:g} (full marks)", solution_ok,
        graded.error or ("" if solution_ok else _explained(_scores(graded), tests, reasons["solution"])),
    ))
    blank = results["blank"]
    blank_ok = blank.score == 0 and not blank.error
    lines.append(CheckLine(
        "blank", blank.score, "0", blank_ok,
        blank.error or ("" if blank_ok else _explained(_scores(blank), tests, {}, kept=list(tests))),
    ))
    for answer_id, code in solutions.items():
        names = set(_defined_names(code))
        reading = [test_id for test_id, (_, read) in tests.items() if names & read]
        lost = sum(tests[t][0] for t in reading)
        result = results[f"wrong-{answer_id}"]
        by_test = {q: score for q, (score, _) in result.questions.items()}
        ok = (
            bool(reading) and not result.error and all(by_test.get(t, 0) == 0 for t in reading)
            and result.score == full - lost
        )
        detail = result.error or (
            "" if ok
            else "no test cell reads what this answer defines" if not reading
            else _explained(by_test, tests, reasons[f"wrong-{answer_id}"], kept=reading)
        )
        lines.append(CheckLine(
            f"{answer_id} wrong", result.score, f"{full - lost:g} (loses {', '.join(reading) or 'nothing'})", ok, detail
        ))
    return lines


def _scores(result: Any) -> dict[str, float]:
    return {q: score for q, (score, _) in result.questions.items()}


def check_text(quiz: str, lines: list[CheckLine]) -> str:
    """The author's check as a table."""
    rows = [f"Author's check of {quiz}:", f"  {'copy graded':<28}{'score':>8}  {'expected':<34}result"]
    for line in lines:
        rows.append(f"  {line.copy:<28}{line.score:>8g}  {line.expected:<34}{'ok' if line.ok else 'PROBLEM'}")
        rows += [f"      {part}" for part in line.detail.split("; ") if part]
    problems = sum(1 for line in lines if not line.ok)
    rows.append(f"  {'no problems' if not problems else f'{problems} problem(s)'}")
    return "\n".join(rows)
