"""One configuration for every way of grading: nbgrader's own files, plus the course's pipeline.

``nbgrader autograde`` reads ``nbgrader_config.py``; so do ``ketamine-grade
class`` and self-grading, through :func:`grading_config`, which loads the same
files nbgrader loads (the user's nbgrader config, then the course's
``nbgrader_config.py``) and applies only the overrides its caller passes
explicitly. :func:`apply_pipeline` is what ``nbgrader_config.py`` calls: the
preprocessors, the exchange and the feedback template, set in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets.config import Config

__all__ = [
    "COURSE_ID", "DEFAULT_EXCHANGE", "exchange_root", "autograde_preprocessors", "sanitize_preprocessors",
    "feedback_preprocessors", "apply_pipeline", "load_course_config", "grading_config",
]

COURSE_ID = "ketamine-course"
"""nbgrader's course id, the one place that names it: ``nbgrader_config.py``, the hub's student configuration and the
tests import it."""
DEFAULT_EXCHANGE = "/srv/nbgrader/exchange"
"""nbgrader's own default exchange, which an administrator makes once (README.md, Instructors)."""


def exchange_root() -> str:
    """The exchange every user of this machine or hub shares: ``KETAMINE_EXCHANGE``, else :data:`DEFAULT_EXCHANGE`.

    ``nbgrader_config.py``, ``hub/jupyterhub_config.py`` and ``hub/roles/student/nbgrader_config.py`` all ask here.
    """
    return os.environ.get("KETAMINE_EXCHANGE", DEFAULT_EXCHANGE)
TEMPLATES = Path(__file__).with_name("templates")


def sanitize_preprocessors() -> list[Any]:
    """Before execution: tamper report (on the raw submission), repairs, nbgrader's restoring, hidden regions swapped
    out."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, OverwriteCells, OverwriteKernelspec

    from .adapters.preprocessors import RecordAnswers, RepairCells, ReportTampering

    return [
        ReportTampering, RepairCells, ClearOutput, OverwriteKernelspec, OverwriteCells, RecordAnswers, CheckCellMetadata
    ]


def autograde_preprocessors() -> list[Any]:
    """Execution in the cage, judging in the grader (its verdicts are the scores), tampering flagged for review, then
    the graded notebook made inert."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
    )

    from .adapters.execute import BoundedExecute
    from .adapters.preprocessors import FlagTampering, JudgeAnswers, SanitizeNotebook, SaveJudgedGrades

    return [
        BoundedExecute, JudgeAnswers, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveJudgedGrades,
        AssignLatePenalties, FlagTampering, SanitizeNotebook, CheckCellMetadata,
    ]


def feedback_preprocessors() -> list[Any]:
    """Feedback shows the grades and the visible tests only, sanitized again, mathematics as MathML."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    from .adapters.preprocessors import RenderMathOffline

    return [GetGrades, ClearHiddenTests, RenderMathOffline, CSSHTMLHeaderPreprocessor]


def apply_pipeline(c: Config) -> Config:
    """Set the course's grading pipeline on a config (``nbgrader_config.py`` calls this).

    Refuses (:class:`~.adapters.UnsupportedVersion`, saying what to do) when
    nbgrader or a Jupyter package the grader reaches into is at a version its
    adapters were not written for.
    """
    from .adapters import require_supported

    require_supported()
    from .adapters.autograde import install_autograde_hooks
    from .adapters.gradebook import share_engines
    from .adapters.pipeline import formgrader_templates
    from .adapters.schema import validate_with_checked_schema

    c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    install_autograde_hooks()  # unsafe submissions refused before nbgrader reads them; failures flagged for review
    share_engines()  # one gradebook engine per process: its compiled queries kept
    validate_with_checked_schema()  # nbgrader's cell metadata schema checked once, not per cell
    c.GenerateFeedback.preprocessors = feedback_preprocessors()
    _add_judgeable_check(c)
    c.ClearHiddenTests.enforce_metadata = True
    c.ExchangeFactory.collect = "ketamine_course.grading.adapters.exchange.SafeCollect"
    c.ExchangeFactory.release_feedback = "ketamine_course.grading.adapters.exchange.SafeReleaseFeedback"
    # Only the feedback converter's exporter (nested config), never the formgrader's own pages.
    # nbgrader's 'feedback' template (its API insists on that name), entered through ours: templates/feedback/
    # comes first on the search path, so feedback_safe.html.j2 and its empty mathjax.html.j2 are found first.
    exporter = c.GenerateFeedback.HTMLExporter
    exporter.extra_template_basedirs = [str(TEMPLATES), str(formgrader_templates())]
    exporter.template_name = "feedback"
    exporter.template_file = "feedback_safe.html.j2"
    exporter.mathjax_url = ""
    return c


def _add_judgeable_check(c: Config) -> None:
    """When a quiz is generated, refuse hidden tests the judge could not run as nbgrader would (naming the cell)."""
    from .adapters.pipeline import generate_assignment_steps
    from .adapters.preprocessors import CheckJudgeable

    current = generate_assignment_steps(c.GenerateAssignment)
    if CheckJudgeable not in current:
        names = [getattr(p, "__name__", str(p)) for p in current]
        # after AUTOTEST lines become tests
        at = names.index("InstantiateTests") + 1 if "InstantiateTests" in names else 0
        c.GenerateAssignment.preprocessors = [*current[:at], CheckJudgeable, *current[at:]]


def load_course_config(course_root: Path | None) -> Config:
    """What nbgrader itself would load: the user's ``nbgrader_config`` files, then
    ``<course_root>/nbgrader_config.py``."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    folders = [*reversed(jupyter_config_path())]
    if course_root is not None:
        folders.append(str(course_root))
    for folder in folders:
        path = Path(folder) / "nbgrader_config.py"
        if path.is_file():
            loader = PyFileConfigLoader(path.name, path=str(path.parent))
            config.merge(loader.load_config())
    return config


def grading_config(
    course_root: Path,
    db_url: str | None = None,
    timeout_s: int | None = None,
    sandbox: bool | None = None,
    notebook_timeout_s: float | None = None,
    config_root: Path | None = None,
) -> Config:
    """The Config for nbgrader's in-process API: the course's nbgrader configuration, with explicit overrides.

    ``config_root`` is the folder whose ``nbgrader_config.py`` is read (default:
    ``course_root``); the course's root and gradebook are then pointed at
    ``course_root`` unless that file sets a gradebook of its own.
    ``sandbox=False`` runs student code with the grader's rights: only for code you trust.
    """
    root = Path(course_root).resolve()
    config = load_course_config(Path(config_root or root))
    config.CourseDirectory.course_id = config.CourseDirectory.get("course_id", COURSE_ID)
    configured_root = config.CourseDirectory.get("root")
    config.CourseDirectory.root = str(root)
    if db_url is not None:
        config.CourseDirectory.db_url = db_url
    elif "db_url" not in config.CourseDirectory or (configured_root and Path(configured_root).resolve() != root):
        config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    if "timeout" not in config.Execute:
        config.Execute.timeout = 30
    if timeout_s is not None:
        config.Execute.timeout = timeout_s
    config.Execute.interrupt_on_timeout = True
    if sandbox is not None:
        config.BoundedExecute.sandbox = sandbox
    if notebook_timeout_s is not None:
        config.BoundedExecute.notebook_timeout = float(notebook_timeout_s)
    return apply_pipeline(config)
