"""The project itself: pinned versions agree, notebooks are committed clean, and the config is sound."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins_from_pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["course"]:
        name, version = requirement.split("==")
        pins[name.lower()] = version
    return pins


# conda-forge packages that provide a PyPI package under another name
CONDA_FOR_PYPI = {"matplotlib-base": "matplotlib"}


def _pins_from_environment_yml() -> dict[str, str]:
    """environment.yml's pins by PyPI name (python excluded)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep:
            name, version = dep.split("=", 1)
            conda[CONDA_FOR_PYPI.get(name.lower(), name.lower())] = version
    assert conda.pop("python") == "3.11"
    return conda


def _pins_from_lock() -> dict[str, str]:
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    return lock


def test_environment_yml_pins_the_same_versions_as_pyproject_and_the_lock() -> None:
    conda = _pins_from_environment_yml()
    assert conda == _pins_from_pyproject()
    lock = _pins_from_lock()
    assert {name: lock.get(name) for name in conda} == conda


def test_environment_yml_is_trimmed_for_binder() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = [dep.split("=")[0] for dep in env["dependencies"] if isinstance(dep, str)]
    assert "matplotlib" not in names and "matplotlib-base" in names, "the full matplotlib conda package pulls in Qt"
    assert env["channels"] == ["conda-forge", "nodefaults"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("test", "site", "hub"):  # what a learner never needs on Binder
        for requirement in extras[extra]:
            assert requirement.split("==")[0].lower() not in names, requirement


def test_lock_file_agrees_with_pyproject_pins() -> None:
    lock = _pins_from_lock()
    for name, version in _pins_from_pyproject().items():
        assert lock[name] == version, name
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("test", "site", "hub"):
        for requirement in extras[extra]:
            name, version = requirement.split("==")
            assert lock[name.lower()] == version, requirement


def test_postbuild_fails_fast() -> None:
    text = (ROOT / "postBuild").read_text()
    assert re.search(r"^set -e", text, re.M)


def test_nbgrader_config_sets_course_root_timeout_and_feedback() -> None:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.CourseDirectory.course_id == "ketamine-course"
    assert Path(config.CourseDirectory.root) == ROOT
    assert config.Execute.timeout > 0
    assert "ClearHiddenTests" in [p.__name__ for p in config.GenerateFeedback.preprocessors]
    sanitize = [p.__name__ for p in config.Autograde.sanitize_preprocessors]
    pipeline = [p.__name__ for p in config.Autograde.autograde_preprocessors]
    # hidden regions are swapped out while sanitizing, so the notebook written before execution holds none
    assert sanitize[0] == "ReportTampering" and sanitize.index("OverwriteCells") < sanitize.index("RecordAnswers")
    assert pipeline.index("BoundedExecute") < pipeline.index("JudgeAnswers") < pipeline.index("SaveAutoGrades") < pipeline.index("SanitizeNotebook")
    assert config.ExchangeFactory.collect.endswith("SafeCollect")
    assert config.BoundedExecute.get("sandbox", True) is True, "grading is sandboxed unless an instructor opts out"
    assert "ExecutePreprocessor" not in config, "nbgrader 0.9 ignores ExecutePreprocessor.timeout; use Execute.timeout"


def _notebooks() -> list[Path]:
    return [p for folder in ("notebooks", "source", "release") for p in sorted((ROOT / folder).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path


def test_gitignore_keeps_nbgrader_state_out() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("submitted/", "autograded/", "feedback/", "gradebook.db", ".ipynb_checkpoints/"):
        assert entry in ignored


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./course test" in readme and "./course open" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^    exec \./course test$", ci, re.M), "as a normal user, CI runs the command itself"
    # As root, CI runs it as a normal user on a clean clone, with that user's own python3.11.
    assert re.search(r"^su - \"\$user\" -c \"cd '\$clone' && CI=1 \./course test\"$", ci, re.MULTILINE)
    # Then, as root in the same clone, the one test that needs root (real accounts, the hub as root).
    assert re.search(r"^CI=1 \./course test tests/test_hub\.py$", ci, re.MULTILINE)
    assert re.search(r"^git clone .*\"\$PWD\" \"\$clone\"$", ci, re.MULTILINE)


def test_wheel_bundles_the_data_tables(tmp_path: Path) -> None:
    """Binder installs a wheel: the cited tables must travel inside it and load from there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ketamine_course-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "ketamine_course/data/references.csv" in names
    assert "ketamine_course/data/labelled_doses.csv" in names


def _locked() -> dict[str, str]:
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name] = version
    return lock


@pytest.mark.parametrize("python", ["3.11.0", "3.11.2"])
def test_every_locked_package_installs_on_every_python_3_11(python: str) -> None:
    """Debian 12's Python is 3.11.2: a pin that needs a newer 3.11 (as soupsieve 4.1.2 did) breaks ./course there."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert python in SpecifierSet(project["requires-python"])
    refused = []
    for name, version in _locked().items():
        try:
            meta = metadata(name)
        except PackageNotFoundError:
            continue  # a package of another platform's marker
        assert meta["Version"] == version, f"{name} {meta['Version']} installed, {version} locked: run ./course setup"
        requires = meta.get("Requires-Python")
        if requires and python not in SpecifierSet(requires):
            refused.append(f"{name}=={version} requires Python {requires}")
    assert not refused, refused
