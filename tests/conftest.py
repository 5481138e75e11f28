"""Shared fixtures for the course's tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from ketamine_course import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # for tests/grading_helpers.py


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of data/ that the loader reads instead of the real one."""
    folder = tmp_path / "data"
    shutil.copytree(ROOT / "data", folder)
    monkeypatch.setenv("KETAMINE_COURSE_DATA", str(folder))
    data._load.cache_clear()
    yield folder
    data._load.cache_clear()
