"""The one door to nbgrader's and Jupyter's internals: every place the grader depends on how they work inside.

An nbgrader, nbclient, jupyter_client or nbconvert upgrade is read here and
nowhere else. What the course uses beyond their documented configuration:

* :mod:`.preprocessors` - nbgrader preprocessors of the course's own (subclasses
  of ``NbGraderPreprocessor``), ``SaveAutoGrades._add_score`` replaced, nbgrader's
  grading rule (``utils.determine_grade``, ``utils.is_solution``) and the
  gradebook's source cells read while a notebook is converted;
* :mod:`.execute` - nbgrader's ``Execute`` subclassed: nbclient's
  ``preprocess``, ``preprocess_cell``, ``execute_cell`` and ``output`` hooks;
* :mod:`.kernel` - jupyter_client's ``AsyncKernelManager``, its private
  ``_async_launch_kernel`` and ``provisioner.process``;
* :mod:`.exchange` - nbgrader's ``ExchangeCollect`` (``init_src`` forked,
  ``do_copy``, ``_path_to_record``, ``_sort_by_timestamp``) and
  ``ExchangeReleaseFeedback.copy_files``;
* :mod:`.autograde` - four methods of nbgrader's ``Autograde`` converter wrapped
  (nbgrader has no setting to replace the converter), its private
  ``_format_source`` and ``_format_dest``, and the texts of nbgrader's errors
  the course translates;
* :mod:`.schema` - nbgrader's cell metadata schema and its upgrade of older
  versions, and its ``BaseMetadataValidator.validate_cell`` given a validator
  whose schema is checked once;
* :mod:`.gradebook` - ``nbgrader.api.create_engine`` made to return one engine
  per database per process;
* :mod:`.pipeline` - where nbgrader keeps the feedback templates, and
  ``GenerateAssignment``'s default preprocessors.

The pure cores (the judge in :mod:`..hidden`, the tamper report in
:mod:`..tamper`, the sanitiser, the intake checks, the cage) import nothing
from here nor from nbgrader; ``tests/test_layout.py`` checks it.

:data:`SUPPORTED` names the versions these adapters were written and tested
against; :func:`require_supported` refuses to grade with any other (run by
every way of grading, through :func:`~ketamine_course.grading.config.apply_pipeline`):
a grader that misreads a new nbgrader would score students wrongly, silently.
"""

from __future__ import annotations

import importlib.metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

__all__ = ["SUPPORTED", "UnsupportedVersion", "unsupported", "require_supported"]

SUPPORTED: dict[str, str] = {
    "nbgrader": ">=0.9.5,<0.10",
    "nbclient": ">=0.10,<0.12",
    "jupyter_client": ">=8.6,<9",
    "nbconvert": ">=7.16,<8",
    "nbformat": ">=5.10,<6",
}
"""Each package whose internals the adapters use, and the versions they are known to work with (requirements.lock pins
one of each)."""


class UnsupportedVersion(RuntimeError):
    """A package the grader reaches into is at a version the adapters were not written for."""


def unsupported(installed: dict[str, str] | None = None) -> list[str]:
    """Each package outside :data:`SUPPORTED`, in words (``installed`` maps names to versions; default: this
    environment)."""
    problems = []
    for name, wanted in SUPPORTED.items():
        try:
            found = installed[name] if installed is not None else importlib.metadata.version(name)
        except (KeyError, importlib.metadata.PackageNotFoundError):
            problems.append(f"{name} is not installed (the grader needs {name}{wanted})")
            continue
        if Version(found) not in SpecifierSet(wanted):
            problems.append(f"{name} is {found}; the grader is written for {name}{wanted}")
    return problems


def require_supported(installed: dict[str, str] | None = None) -> None:
    """Refuse to grade, saying what to do, when a package the adapters reach into is at another version."""
    problems = unsupported(installed)
    if problems:
        pins = " ".join(f"'{name}{SUPPORTED[name]}'" for name in SUPPORTED)
        raise UnsupportedVersion(
            f"{'; '.join(problems)}. Nothing was graded: "
            "a grader reading another version's internals could score students "
            "wrongly. Install the tested versions (./course setup, or pip install -r requirements.lock, "
            f"or pip install {pins}); "
            "to move the course to a new version, see CONTRIBUTING.md (Upgrading nbgrader)."
        )
