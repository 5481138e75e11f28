"""``ketamine-grade doctor``: what this machine gives the grader, in words: Python, where things live, the sandbox, the
limits.

Each line is a :class:`Finding`; a finding that is not ``ok`` says what to do.
Class grading refuses to run where the sandbox finding is not ok (unless the
instructor opts out), so the doctor's exit status is 1 there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "findings", "report"]

@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    topic: str
    detail: str
    ok: bool = True


def _python() -> Finding:
    """This Python, against the package's ``Requires-Python`` (pyproject.toml's, the one statement of it)."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    version = ".".join(map(str, sys.version_info[:3]))
    try:
        supported = metadata("ketamine-course")["Requires-Python"] or ""
    except PackageNotFoundError:
        supported = ""
    ok = not supported or version in SpecifierSet(supported)
    detail = f"{version} at {sys.executable}" + ("" if ok else f"; the course supports Python {supported}")
    return Finding("Python", detail, ok)


def _nbgrader() -> Finding:
    """nbgrader and the Jupyter packages the grader reaches into, against the versions its adapters support."""
    from importlib.metadata import PackageNotFoundError, version

    from .adapters import SUPPORTED, unsupported

    problems = unsupported()
    if problems:
        return Finding("nbgrader", "; ".join(problems) + ": grading refuses until the tested versions are installed "
                       "(./course setup, or pip install -r requirements.lock)", False)
    found = []
    for name in SUPPORTED:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:  # unsupported() has named it already
            continue
    return Finding("nbgrader", ", ".join(found) + " (the versions the grader's adapters support)")


def _package() -> list[Finding]:
    from .. import data
    from .config import TEMPLATES

    package = Path(__file__).resolve().parents[1]
    checkout = (package.parents[1] / "pyproject.toml").is_file()
    how = f"the checkout at {package.parents[1]} (editable)" if checkout else "installed (a wheel)"
    tables = sorted(data.data_dir().glob("*.csv"))
    template = TEMPLATES / "feedback" / "feedback_safe.html.j2"
    found = [Finding("Package", f"{package} — {how}")]
    found.append(Finding("Data", f"{data.data_dir()} ({len(tables)} tables)", bool(tables)))
    found.append(Finding(
        "Feedback page",
        str(template) if template.is_file() else f"{template} is missing: reinstall the course package",
        template.is_file(),
    ))
    return found


def _course() -> Finding:
    from .run import exposed_to_others, find_course_root, quizzes

    try:
        root = find_course_root()
    except FileNotFoundError:
        return Finding("Course folder", "none here (run from inside the course folder to grade)")
    exposed = exposed_to_others(root)
    if exposed and (root / "submitted").exists():  # a class's course folder, not a learner's or the public copy
        return Finding("Course folder", exposed, False)
    return Finding("Course folder", f"{root} ({len(quizzes(root))} quizzes)")


def _temporary() -> Finding:
    from .sandbox import SandboxUnavailable, private_folder_base

    try:
        base = private_folder_base()
    except SandboxUnavailable as problem:
        return Finding("Kernels' folders", str(problem), False)
    free = shutil.disk_usage(base).free / 1024**3
    return Finding("Kernels' folders", f"in {base} ({free:.1f} GB free)")


def _sandbox() -> list[Finding]:
    from .cgroups import describe
    from .sandbox import SandboxUnavailable, in_kubernetes, require_sandbox

    found = []
    if in_kubernetes():
        found.append(Finding("Host", "a Kubernetes pod (Zero to JupyterHub)"))
    bwrap = shutil.which("bwrap")
    version = ""
    if bwrap:
        done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False)
        version = done.stdout.strip()
    try:
        require_sandbox()
    except SandboxUnavailable as problem:
        found.append(Finding("Sandbox", str(problem), False))
    else:
        who = (
            "each kernel as an unprivileged uid of its own (root)" if os.geteuid() == 0
            else "each kernel in a user namespace (no root needed)"
        )
        found.append(Finding("Sandbox", f"{version or 'bubblewrap'} at {bwrap}: a cage starts here; {who}"))
    found.append(Finding("Limits", describe()))
    return found


def findings() -> list[Finding]:
    """Everything the doctor checks, in the order it reports."""
    return [_python(), _nbgrader(), *_package(), _course(), _temporary(), *_sandbox()]


def report() -> tuple[str, int]:
    """The report's text and the command's exit status (1 when something must be fixed to grade a class)."""
    found = findings()
    lines = [f"{'ok ' if f.ok else 'FIX'} {f.topic + ':':<17} {f.detail}" for f in found]
    return "\n".join(lines), 0 if all(f.ok for f in found) else 1
