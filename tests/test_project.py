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


SUPPORTED = ("3.11", "3.12", "3.13")
"""The Pythons the course runs on (./course names them once, as SUPPORTED_MIN and SUPPORTED_MAX)."""


def test_every_place_names_the_same_supported_pythons() -> None:
    from packaging.specifiers import SpecifierSet

    course = (ROOT / "course").read_text()
    low = re.search(r"^SUPPORTED_MIN=(\d+)$", course, re.M)
    high = re.search(r"^SUPPORTED_MAX=(\d+)$", course, re.M)
    assert low and high
    assert tuple(f"3.{minor}" for minor in range(int(low.group(1)), int(high.group(1)) + 1)) == SUPPORTED
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = SpecifierSet(project["requires-python"])
    assert all(f"{version}.0" in allowed for version in SUPPORTED)
    assert "3.10.99" not in allowed and "3.14.0" not in allowed, "3.14 is refused until the pins are tested on it"
    classifiers = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")}
    assert classifiers == set(SUPPORTED)
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in SUPPORTED, "the suite runs on a supported Python"


def _pins_from_environment_yml() -> dict[str, str]:
    """environment.yml's pins by PyPI name (python excluded: any supported version)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep:
            name, version = dep.split("=", 1)
            conda[CONDA_FOR_PYPI.get(name.lower(), name.lower())] = version
    assert conda.pop("python") in SUPPORTED
    return conda


def _lock_entries() -> dict[str, tuple[str, str]]:
    """requirements.lock: normalised name -> (version, environment marker or "")."""
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            requirement, _, marker = line.partition(";")
            name, version = requirement.strip().split("==")
            lock[name.lower().replace("_", "-")] = (version, marker.strip())
    return lock


def _pins_from_lock() -> dict[str, str]:
    return {name: version for name, (version, _) in _lock_entries().items()}


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

    from ketamine_course.grading.config import COURSE_ID

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.CourseDirectory.course_id == COURSE_ID
    assert Path(config.CourseDirectory.root) == ROOT
    assert config.Execute.timeout > 0
    assert "ClearHiddenTests" in [p.__name__ for p in config.GenerateFeedback.preprocessors]
    sanitize = [p.__name__ for p in config.Autograde.sanitize_preprocessors]
    pipeline = [p.__name__ for p in config.Autograde.autograde_preprocessors]
    # hidden regions are swapped out while sanitizing, so the notebook written before execution holds none
    assert sanitize[0] == "ReportTampering" and sanitize.index("OverwriteCells") < sanitize.index("RecordAnswers")
    assert pipeline.index("BoundedExecute") < pipeline.index("JudgeAnswers") < pipeline.index("SaveJudgedGrades") < pipeline.index("SanitizeNotebook")
    assert "SaveAutoGrades" not in pipeline, "scores come from the grader's verdicts, never from what the kernel wrote"
    assert config.ExchangeFactory.collect.endswith("SafeCollect")
    assert config.BoundedExecute.get("sandbox", True) is True, "grading is sandboxed unless an instructor opts out"
    assert "ExecutePreprocessor" not in config, "nbgrader 0.9 ignores ExecutePreprocessor.timeout; use Execute.timeout"


def _notebooks() -> list[Path]:
    return [p for folder in ("notebooks", "source", "release") for p in sorted((ROOT / folder).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


@pytest.mark.parametrize("config_folder", [ROOT, ROOT / "hub" / "roles" / "student"], ids=["course", "hub student"])
def test_the_course_id_and_the_exchange_come_from_one_place(config_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbgrader_config.py and the hub's student configuration take both from ketamine_course.grading.config."""
    from traitlets.config.loader import PyFileConfigLoader

    from ketamine_course.grading.config import COURSE_ID, DEFAULT_EXCHANGE

    monkeypatch.delenv("KETAMINE_EXCHANGE", raising=False)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(config_folder)).load_config()
    assert (config.CourseDirectory.course_id, config.Exchange.root) == (COURSE_ID, DEFAULT_EXCHANGE)
    monkeypatch.setenv("KETAMINE_EXCHANGE", "/elsewhere")
    assert PyFileConfigLoader("nbgrader_config.py", path=str(config_folder)).load_config().Exchange.root == "/elsewhere"
    for path in (config_folder / "nbgrader_config.py", ROOT / "hub" / "jupyterhub_config.py"):
        text = path.read_text()
        assert f'"{COURSE_ID}"' not in text and DEFAULT_EXCHANGE not in text.split('"""')[-1], f"{path.name} repeats a fact"
    # the README's instructions make the folder the code expects
    assert f"install -d -m 1777 {DEFAULT_EXCHANGE}" in (ROOT / "README.md").read_text()


def test_the_version_is_pyproject_s_everywhere() -> None:
    """pyproject.toml is the source; the package reads it from its installed metadata, CITATION.cff repeats it for citation tools."""
    import ketamine_course

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == version
    assert ketamine_course.__version__ == version


def test_each_jupyter_view_is_written_from_one_place() -> None:
    """jupyter/ (./course open, Binder) and hub/roles/*/ are what ketamine_course.views writes: no copy drifts."""
    from ketamine_course import views

    assert {view.folder for view in views.VIEWS.values()} >= {f"hub/roles/{role.name}" for role in (ROOT / "hub" / "roles").iterdir()}
    for view in views.VIEWS.values():
        for path, text in views.files(view).items():
            committed = ROOT / view.folder / path
            assert committed.is_file() and committed.read_text() == text, f"{view.folder}/{path} differs: run python -m ketamine_course.views"
    # the lists agree: the learner and the hub's students never see an instructor tool, instructors see them all
    for name in ("learner", "student"):
        pages = json.loads((ROOT / views.VIEWS[name].folder / "labconfig" / "page_config.json").read_text())
        server = json.loads((ROOT / views.VIEWS[name].folder / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
        for plugin in ("formgrader", "create-assignment", "course-list"):
            assert pages["disabledExtensions"][f"@jupyter/nbgrader:{plugin}"] and pages["lockedExtensions"][f"@jupyter/nbgrader:{plugin}"], (name, plugin)
        assert server["nbgrader.server_extensions.formgrader"] is server["nbgrader.server_extensions.course_list"] is False, name
    instructor = json.loads((ROOT / "hub" / "roles" / "instructor" / "jupyter_server_config.json").read_text())
    assert all(instructor["ServerApp"]["jpserver_extensions"].values())
    assert views.main([str(ROOT), "--check"]) == 0


def test_the_learner_view_of_course_open_passes_postbuilds_own_check(tmp_path: Path) -> None:
    """Binder's learner view is read from jupyter/; postBuild's own check (its embedded Python) accepts jupyter/ as it is."""
    import os

    text = (ROOT / "postBuild").read_text()
    check = re.search(r"<<'PYTHON'\n(.*?)\nPYTHON\n", text, re.DOTALL)
    assert check and "jupyter/labconfig/page_config.json" in text and "jupyter/jupyter_server_config.json" in text
    plugins = [name.removeprefix("@jupyter/nbgrader:")
               for name in json.loads((ROOT / "jupyter" / "labconfig" / "page_config.json").read_text())["disabledExtensions"]]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    environment.update(JUPYTER_CONFIG_DIR=str(tmp_path), JUPYTER_CONFIG_PATH=str(ROOT / "jupyter"))
    run = subprocess.run([sys.executable, "-", *plugins], input=check.group(1), cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "learner's view in place" in run.stdout


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path


def test_gitignore_keeps_nbgrader_state_out_and_the_package_in() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("/submitted/", "/autograded/", "/feedback/", "/gradebook.db", ".ipynb_checkpoints/"):
        assert entry in ignored
    package_files = subprocess.run(["git", "ls-files", "src"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dropped = subprocess.run(["git", "check-ignore", "--no-index", *package_files], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    assert dropped == [], f"the wheel follows .gitignore, so these would be missing from it: {dropped}"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./course test" in readme and "./course open" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^    exec \./course test$", ci, re.M), "as a normal user, CI runs the command itself"
    # As root, CI runs it as a normal user on a clean clone, with that user's own python3 (no version named).
    assert re.search(r"^su - \"\$user\" -c \"cd '\$clone' && CI=1 \./course test\"$", ci, re.MULTILINE)
    assert "python3.11" not in ci and "python3.11-venv" not in ci, "Debian 13 has no python3.11: CI must not name one"
    # Then the suite on the other supported Pythons, from clones under /tmp: every fast test and the portable slow ones.
    assert re.search(r"PYTHON='\$copy/bin/python\$version' \./course test -m '\$OTHER_PYTHONS_MARKERS'", ci)
    assert 'OTHER_PYTHONS_MARKERS="not once and (not slow or portable)"' in ci and 'clone="/tmp/' in ci
    # Then, as root in the same clone, the one test that needs root (real accounts, the hub as root).
    assert re.search(r"^CI=1 \./course test tests/test_hub\.py$", ci, re.MULTILINE)
    assert re.search(r'^    git clone .*"\$PWD" "\$1"$', ci, re.MULTILINE), "each run is on a clean clone"


def test_every_installed_package_is_locked_at_its_installed_version() -> None:
    """On the Python this runs on, nothing in the environment is unpinned or at another version than the lock says."""
    from importlib.metadata import distributions

    from packaging.markers import Marker

    lock = _lock_entries()
    unpinned, other = [], []
    for dist in distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in ("ketamine-course", "pip") or "_vendor" in Path(str(getattr(dist, "_path", ""))).parts:
            continue  # the course itself, pip, and packages vendored inside another (setuptools' own copies)
        if name not in lock:
            unpinned.append(f"{name}=={dist.version}")
        elif lock[name][0] != dist.version:
            other.append(f"{name} {dist.version} installed, {lock[name][0]} locked")
    assert not unpinned, f"not in requirements.lock (add them, with a marker if only this Python needs them): {unpinned}"
    assert not other, f"{other}: run ./course setup"
    for name, (_, marker) in lock.items():
        if marker:
            assert Marker(marker).evaluate() or name not in {d.metadata["Name"].lower() for d in distributions()}, name


@pytest.mark.parametrize("python", [f"{version}.0" for version in SUPPORTED] + ["3.11.2", "3.12.3", "3.13.5"])
def test_every_locked_package_admits_every_supported_python(python: str) -> None:
    """Debian 12's Python is 3.11.2, Ubuntu 24.04's 3.12.3, Debian 13's 3.13.5: a pin needing a newer release (as soupsieve 4.1.2 needed 3.11.5) breaks ./course there."""
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    refused = []
    for name, version in _pins_from_lock().items():
        try:
            meta = metadata(name)
        except PackageNotFoundError:
            continue  # a package another Python's marker asks for
        requires = meta.get("Requires-Python")
        if requires and python not in SpecifierSet(requires):
            refused.append(f"{name}=={version} requires Python {requires}")
    assert not refused, refused


def test_the_course_script_s_usage_names_every_command_it_accepts() -> None:
    """./course makes its usage line from one list; that list names each command of its case, and only those."""
    script = (ROOT / "course").read_text()
    accepted = set(re.findall(r"^    ([a-z][a-z-]*)\)$", script, re.M))
    listed = re.search(r"^commands=\(\n(.*?)\n\)$", script, re.M | re.S)
    assert accepted >= {"open", "test", "grade", "bench", "site", "setup", "hub-setup", "hub"} and listed
    assert {entry.strip().strip('"').split()[0] for entry in listed.group(1).splitlines()} == accepted
    run = subprocess.run([str(ROOT / "course"), "no-such-command"], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2 and run.stdout == ""
    for command in accepted:
        assert f"./course {command}" in run.stderr, run.stderr
