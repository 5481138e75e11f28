"""Binder's build as repo2docker runs it: environment.yml's packages, then ``postBuild``, then the learner's JupyterLab.

repo2docker itself (and conda-forge) cannot run here, so the environment is a
fresh virtual environment with the packages environment.yml names, at the
lock's versions; ``postBuild`` then runs unchanged, from a copy of the files
git tracks (what Binder clones), with that environment first on PATH and a
fresh home folder. The learner's view is then checked in Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_FOR_PYPI = {"matplotlib-base": "matplotlib"}

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: CI runs these on the system Python only


def _binder_packages() -> list[str]:
    """The PyPI names of the packages environment.yml installs (python and pip aside)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = [dep.split("=")[0] for dep in env["dependencies"] if isinstance(dep, str)]
    return [CONDA_FOR_PYPI.get(name, name) for name in names if name not in ("python", "pip")]


def _tracked_copy(target: Path) -> Path:
    """The repository's tracked files (what Binder clones), copied to ``target``."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _environment(env: Path, home: Path) -> dict[str, str]:
    # Not the test run's own environment or Jupyter folders; pip's settings (index, certificates) stay.
    variables = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith("JUPYTER")}
    return {**variables, "PATH": f"{env / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home), "JUPYTER_PLATFORM_DIRS": "1"}


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """environment.yml's packages in a fresh environment, then postBuild run in a copy of the repository."""
    work = tmp_path_factory.mktemp("binder")
    env, home, repo = work / "env", work / "home", _tracked_copy(work / "repo")
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    installed = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--constraint", str(ROOT / "requirements.lock"), *_binder_packages()],
        capture_output=True, text=True, check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    run = subprocess.run(["bash", "postBuild"], cwd=repo, env=_environment(env, home), capture_output=True, text=True, timeout=600, check=False)
    return {"env": env, "home": home, "repo": repo, "run": run}


def test_postbuild_succeeds_quietly_with_no_traceback(binder: dict[str, Any]) -> None:
    run = binder["run"]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert len(output.strip().splitlines()) <= 5, output
    assert output.strip().splitlines()[-1].startswith("postBuild: learner's view in place")


def test_postbuild_check_fails_loudly_when_the_learner_view_is_not_in_place(binder: dict[str, Any]) -> None:
    """postBuild's own check (its embedded Python), run against a plugin name nbgrader does not have."""
    check = re.search(r"<<'PYTHON'\n(.*?)\nPYTHON\n", (ROOT / "postBuild").read_text(), re.DOTALL)
    assert check, "postBuild checks the learner's view"
    run = subprocess.run(
        [str(binder["env"] / "bin" / "python"), "-", "formgrader", "renamed-tool"],
        input=check.group(1), env=_environment(binder["env"], binder["home"]), capture_output=True, text=True, check=False,
    )
    assert run.returncode != 0
    assert "nbgrader has no JupyterLab plugin @jupyter/nbgrader:renamed-tool" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture
def learner_lab(binder: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    from browser_helpers import BinderLab, browser_missing

    missing = browser_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {missing}")
    if missing:
        pytest.skip(missing)
    with BinderLab(tmp_path, python=str(binder["env"] / "bin" / "python")) as lab:
        yield lab


def test_binder_opens_the_start_page_with_only_the_learner_tools(learner_lab: Any) -> None:
    from playwright.sync_api import expect

    from browser_helpers import open_browser, open_notebook

    readme = (ROOT / "README.md").read_text()
    launch = re.search(r"urlpath=(lab/tree/[^)\s\"']+)", readme)
    assert launch and launch.group(1) == "lab/tree/notebooks/00_start_here.ipynb"
    with open_browser() as (page, watch):
        page.set_default_timeout(60_000)
        page.goto(learner_lab.url(launch.group(1).removeprefix("lab/tree/")))
        expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) h1").first).to_contain_text("Ketamine: an interactive pharmacology course")
        open_notebook(page, learner_lab, "release/quiz01_history/quiz01_history.ipynb")
        expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar").get_by_text("Validate", exact=True)).to_be_visible()
        # the learner's view of ./course open: no nbgrader menu (so no Formgrader) and no Assignments tab
        expect(page.locator("#jp-menu-panel").get_by_role("menuitem", name="Nbgrader", exact=True)).to_have_count(0)
        expect(page.locator("[title*='Create Assignment'], [title*='Assignments'], [title*='Formgrader']")).to_have_count(0)
        assert not watch.problems(), "\n".join(watch.problems())
