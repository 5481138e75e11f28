"""Where nbgrader keeps what the course's configuration builds on: its feedback templates, its default generate
steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbgrader
from nbgrader.converters import GenerateAssignment

__all__ = ["formgrader_templates", "generate_assignment_steps"]


def formgrader_templates() -> Path:
    """nbgrader's own template folder (its ``feedback`` template is found there; nbgrader's API insists on that
    name)."""
    return Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


def generate_assignment_steps(configured: Any) -> list[Any]:
    """The preprocessors ``nbgrader generate_assignment`` runs: the configured list, or nbgrader's default."""
    return list(configured.get("preprocessors", GenerateAssignment.class_traits()["preprocessors"].default()))
