"""Shared fixtures for the course's tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ketamine_course import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # for tests/grading_helpers.py
# The environment's own programs first on PATH, as `./course test` puts them: nbgrader runs `alembic` by name to
# check a gradebook, and a contributor may run `.venv/bin/python -m pytest` without activating the environment.
_SCRIPTS = str(Path(sys.executable).parent)
if _SCRIPTS not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _SCRIPTS + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of data/ that the loader reads instead of the real one."""
    folder = tmp_path / "data"
    shutil.copytree(ROOT / "data", folder)
    monkeypatch.setenv("KETAMINE_COURSE_DATA", str(folder))
    data._load.cache_clear()
    yield folder
    data._load.cache_clear()


def sandbox_or_skip() -> bool:
    """True where student code can be isolated; skip (or, under CI, fail) where bubblewrap is missing."""
    import os

    from ketamine_course.grading.sandbox import sandbox_missing

    missing = sandbox_missing()
    if not missing:
        return True
    reason = f"the grading sandbox needs {', '.join(missing)} (Debian: apt-get install bubblewrap)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sandbox() -> bool:
    """Whether grading tests run sandboxed: always under CI; elsewhere only if bubblewrap is installed."""
    import os

    from ketamine_course.grading.sandbox import sandbox_missing

    if os.environ.get("CI") and sandbox_missing():
        pytest.fail("CI must grade in the sandbox: .ci/run installs bubblewrap")
    return not sandbox_missing()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the test item, so fixtures can act on failure (browser screenshots)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


ONCE_FIXTURES = frozenset({"site"})
"""Fixtures whose tests do not depend on the Python version (the site build): marked ``once`` like the browser tests."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ONCE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.once)
