"""The package's layout: which part may import which, and what the student's kernel loads.

The package has four floors (see ``CONTRIBUTING.md``):

1. the data tables and the course map (``data``, ``manifest``) import nothing of the package;
2. the science (``dosing``, ``pk``, ``receptor``, ``evidence``, ``population``) imports the data and itself;
3. beside each other on the floor above, the kernel side of the quizzes (``quiz``) and the teaching layer
   (``plotting``, ``widgets``, ``lesson``, ``site``, ``workspace``, ``views``) import the floors below and their own part;
4. the grading wing (``grading``) imports anything below it. Inside it, every use of nbgrader's and Jupyter's
   internals is in ``grading/adapters``; the pure cores (the judge, the tamper report, the sanitiser, the intake
   checks, the cage) import neither the adapters nor nbgrader, nbclient or jupyter_client.

An import is read wherever it is written (a function's deferred import counts as much as one at the top), and
no floor imports a floor above it or a sibling; no module imports itself in a circle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from places import ROOT

PACKAGE = ROOT / "src" / "ketamine_course"
FOUNDATION = {"data", "manifest"}
SCIENCE = {"dosing", "pk", "receptor", "evidence", "population"}
TEACHING = {"plotting", "widgets", "lesson", "site", "workspace", "views"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from . import pk` imports the module pk; `from .data import cite` imports the module data
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _part(module: str) -> tuple[int, str]:
    """(floor, part) of a module of the package."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top == "":
        return 5, "the package's face"
    if top in FOUNDATION:
        return 1, "data and course map"
    if top in SCIENCE:
        return 2, "science"
    if top == "quiz":
        return 3, "kernel side"
    if top in TEACHING:
        return 3, "teaching"
    if top == "grading":
        return 4, "grading"
    raise AssertionError(f"{module} belongs to no part of the layout: add it to tests/test_layout.py and CONTRIBUTING.md")


def test_the_kernel_side_offers_every_check() -> None:
    from ketamine_course import quiz
    from ketamine_course.quiz import checks

    assert set(checks.__all__) <= set(quiz.__all__)


def test_every_module_belongs_to_a_part() -> None:
    for module in _modules():
        _part(module)


def test_no_import_runs_up_a_floor_or_across_to_a_sibling() -> None:
    wrong = []
    for module, imported in _graph().items():
        floor, part = _part(module)
        for other in imported:
            other_floor, other_part = _part(other)
            if other_floor > floor or (other_floor == floor and other_part != part):
                wrong.append(f"{module} ({part}) imports {other} ({other_part})")
    assert not wrong, "\n".join(sorted(wrong))


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_itself_through_others() -> None:
    graph = _graph()
    # a package's face re-exports its modules; an import of a sibling through the face is an import of the face
    assert _circles(graph) == []


def test_the_checks_find_what_they_look_for() -> None:
    """Controls: an import up a floor and a circle are both seen."""
    graph = _graph()
    assert "ketamine_course.quiz.wire" in graph["ketamine_course.grading.hidden"]
    assert "ketamine_course.data" in graph["ketamine_course.grading.doctor"], "a deferred import is read"
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _part("ketamine_course.grading.here") > _part("ketamine_course.quiz.cells")


def _quiz_cells(quiz: str) -> tuple[str, str]:
    """The release quiz's setup cell and its grade cell (the first and last code cells)."""
    nb = json.loads((ROOT / "release" / quiz / f"{quiz}.ipynb").read_text())
    code = ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code"]
    return code[0], code[-1]


@pytest.mark.parametrize("quiz", sorted(path.name for path in (ROOT / "release").iterdir() if path.is_dir()))
def test_while_graded_the_student_s_kernel_loads_the_kernel_side_only(quiz: str) -> None:
    """The quiz's setup and grade cells, a recorder's call, while nbgrader grades: nothing of the grader, no nbgrader."""
    setup, grade = _quiz_cells(quiz)
    code = (
        "import os, sys\n"
        "os.environ['NBGRADER_EXECUTION'] = 'autograde'\n"
        f"exec({setup!r})\n"
        "__import__('ketamine_course.quiz.wire', fromlist=['record_answers']).record_answers('q1_test', ['x'])\n"
        f"exec({grade!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ketamine_course', 'nbgrader', 'sqlalchemy', 'nbconvert')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')))
    assert not {m for m in loaded if m.startswith("ketamine_course.grading")}, loaded
    assert not {m for m in loaded if not m.startswith("ketamine_course")}, loaded
    assert {"ketamine_course.quiz.checks", "ketamine_course.quiz.wire", "ketamine_course.quiz.cells"} <= loaded


PURE_CORES = ("hidden", "tamper", "sanitize", "intake", "sandbox", "cgroups", "seccomp")
JUPYTER_INTERNALS = ("nbgrader", "nbclient", "jupyter_client", "nbconvert")
ALLOWED_IN_CORES = {
    # the sanitiser renders Markdown with nbconvert's own renderer, so that the clean HTML it keeps is what a viewer would
    # have shown (nbconvert's version is checked with the adapters', SUPPORTED)
    "ketamine_course.grading.sanitize": {"nbconvert.filters.markdown_mistune"},
}


def _third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("core", PURE_CORES)
def test_a_pure_core_touches_no_internals_of_nbgrader_or_jupyter(core: str) -> None:
    name = f"ketamine_course.grading.{core}"
    path = _modules()[name]
    adapters = {m for m in _graph()[name] if m.startswith("ketamine_course.grading.adapters")}
    assert not adapters, f"{name} imports {sorted(adapters)}"
    internals = {m for m in _third_party_imports(path) if m.split(".")[0] in JUPYTER_INTERNALS} - ALLOWED_IN_CORES.get(name, set())
    assert not internals, f"{name} imports {sorted(internals)}: that belongs in grading/adapters"


def test_only_the_adapters_subclass_or_replace_nbgrader_and_jupyter_internals() -> None:
    """Outside grading/adapters, nbgrader is used through its documented API only: no subclass, no replaced method, no private name."""
    wrong = []
    for name, path in _modules().items():
        if name.startswith("ketamine_course.grading.adapters"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level
                    and (node.module or "").split(".")[0] in JUPYTER_INTERNALS for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
                if bases & imported:
                    wrong.append(f"{name}: class {node.name} subclasses {sorted(bases & imported)}")
                if any(isinstance(base, ast.Call) for base in node.bases):  # a base computed at run time hides what it is
                    wrong.append(f"{name}: class {node.name} has a base class computed by a call")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") in imported:
                        wrong.append(f"{name}: replaces {target.value.id}.{target.attr}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and getattr(node.value, "id", "") in imported:
                wrong.append(f"{name}: reads {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)
