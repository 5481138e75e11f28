"""Binder as a learner meets it: environment.yml's packages, ``postBuild``, JupyterLab, and a quiz graded there.

repo2docker itself (and conda-forge) cannot run here, so the environment is a
fresh virtual environment with the packages environment.yml names, at the
lock's versions; ``postBuild`` then runs unchanged, from a copy of the files
git tracks (what Binder clones), with that environment first on PATH. As on
Binder, the repository is the home folder, there is no bubblewrap, and
nothing the test sets stands in for what ``postBuild`` must do (no settings
of the test's own, no Jupyter variables). The learner's view is then checked
in Chromium, and a learner's saved quiz is graded with its own grade cell
and with ``ketamine-grade self`` from a terminal: the installed package (not
the checkout) grades it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from grading_helpers import question_points, solutions, submission
from places import path_without, tracked_copy

ROOT = Path(__file__).resolve().parents[1]
QUIZ = "quiz01_history"
CONDA_FOR_PYPI = {"matplotlib-base": "matplotlib"}

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: CI runs these on the system Python only


def _binder_packages() -> list[str]:
    """The PyPI names of the packages environment.yml installs (python and pip aside)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = [dep.split("=")[0] for dep in env["dependencies"] if isinstance(dep, str)]
    return [CONDA_FOR_PYPI.get(name, name) for name in names if name not in ("python", "pip")]


def _environment(env: Path, repo: Path, no_bwrap: str) -> dict[str, str]:
    """Binder's: its environment first on PATH, no bubblewrap, the repository as HOME; none of the test run's Python or Jupyter settings."""
    variables = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not k.startswith(("JUPYTER", "IPYTHON"))}
    return {**variables, "PATH": f"{env / 'bin'}{os.pathsep}{no_bwrap}", "HOME": str(repo)}


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """environment.yml's packages in a fresh environment, then postBuild run in a copy of the repository."""
    work = tmp_path_factory.mktemp("binder")
    env, repo = work / "env", tracked_copy(work / "repo")
    environment = _environment(env, repo, path_without(work / "bin", "bwrap"))
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    installed = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--constraint", str(ROOT / "requirements.lock"), *_binder_packages()],
        capture_output=True, text=True, check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    run = subprocess.run(["bash", "postBuild"], cwd=repo, env=environment, capture_output=True, text=True, timeout=600, check=False)
    return {"env": env, "repo": repo, "run": run, "environment": environment, "work": work}


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
        input=check.group(1), cwd=binder["repo"], env=binder["environment"], capture_output=True, text=True, check=False,  # it reads jupyter/
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
    with BinderLab(binder["repo"], str(binder["env"] / "bin" / "python"), binder["environment"], tmp_path / "binder-lab.log") as lab:
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


def _save_answers(binder: dict[str, Any]) -> Path:
    """The learner's answers to quiz 1, saved in the quiz the repository holds (where Binder's learner answers it)."""
    quiz = binder["repo"] / "release" / QUIZ / f"{QUIZ}.ipynb"
    nbformat.write(submission(QUIZ, solutions(QUIZ)), quiz)
    return quiz


def test_binder_grades_a_quiz_from_a_terminal_with_the_installed_package(binder: dict[str, Any]) -> None:
    _save_answers(binder)
    where = subprocess.run([str(binder["env"] / "bin" / "python"), "-c", "import ketamine_course; print(ketamine_course.__file__)"],
                           cwd=binder["repo"], env=binder["environment"], capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(binder["env"]), "postBuild installs the package; the checkout is not on the path"
    run = subprocess.run(["ketamine-grade", "self", QUIZ], cwd=binder["repo"], env=binder["environment"],
                         capture_output=True, text=True, timeout=600, check=False)
    total = sum(question_points(QUIZ).values())
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{QUIZ}: {total} / {total} points" in run.stdout, run.stdout + run.stderr
    assert "graded without the sandbox" in run.stderr, "Binder has no bubblewrap, and the learner is told"
    assert (binder["repo"] / "feedback" / f"{QUIZ}.html").is_file()


def test_binder_grades_a_saved_quiz_with_its_grade_cell(learner_lab: Any, binder: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    from browser_helpers import CURRENT_NOTEBOOK, open_browser, open_notebook, run_all

    _save_answers(binder)
    total = sum(question_points(QUIZ).values())
    with open_browser() as (page, watch):
        page.set_default_timeout(120_000)
        open_notebook(page, learner_lab, f"release/{QUIZ}/{QUIZ}.ipynb")
        run_all(page)
        graded = page.locator(f"{CURRENT_NOTEBOOK} .ketamine-grade")
        expect(graded.locator("h3")).to_have_text(f"Your score: {total} / {total}", timeout=180_000)
        expect(graded).to_contain_text("Graded without the sandbox")
        assert not watch.problems(), "\n".join(watch.problems())
