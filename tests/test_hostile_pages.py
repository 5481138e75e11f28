"""What the instructor opens, opened in Chromium: a hostile student's feedback page and nbgrader's formgrader.

A student puts HTML and JavaScript in every channel (outputs of every kind,
Markdown and raw cells, an attachment, the notebook's metadata). The class is
graded and feedback generated with nbgrader's own commands; then the feedback
page is opened from disk and the submission is opened in the formgrader, on a
Jupyter server of the instructor's, with the instructor's token. Any dialog,
any request the payload makes, a changed page title, a changed grade or a
changed configuration file fails the test. A control page shows the payload
does run when nothing stops it, so the test can fail.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, _free_port, browser_missing
from conftest import sandbox_or_skip
from grading_helpers import HTML_OUTPUTS, ROOT, make_course, solutions, submission, submit, with_hostile_cells

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: CI runs these on the system Python only
QUIZ = "quiz01_history"


def _skip_without_browser() -> None:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run installs it")
        pytest.skip(reason)


def _nbgrader(*args: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    _skip_without_browser()
    sandbox_or_skip()
    tmp = tmp_path_factory.mktemp("pages")
    course = make_course(tmp, QUIZ)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    submit(course, QUIZ, "mallory", with_hostile_cells(submission(QUIZ, {"q1_answer": HTML_OUTPUTS})))
    submit(course, QUIZ, "alice", submission(QUIZ, solutions(QUIZ)))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jupyter"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    _nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    _nbgrader("generate_feedback", QUIZ, "--force", cwd=course, env=env)
    return course, env


class _Attempts:
    """What a payload managed: dialogs, requests to /pwned, a changed title."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.requests: list[str] = []


def _open(url: str, attempts: _Attempts, token: str | None = None):
    """A Chromium page on ``url`` with dialogs and payload requests recorded, other off-machine requests aborted."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    context = browser.new_context()

    def guard(route) -> None:
        address = route.request.url
        if "pwned" in address:
            attempts.requests.append(address)
            route.abort()
        elif address.startswith(("file:", "data:", "http://127.0.0.1")):
            route.continue_()
        else:
            route.abort()  # nbgrader's own pages ask a CDN for MathJax: no network here

    context.route("**/*", guard)
    page = context.new_page()

    def dialog(d) -> None:
        attempts.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)  # time for any onload, onerror or ontoggle handler to fire
    return playwright, browser, page


ACTIVE_SCHEME = re.compile(r"^\s*(javascript|vbscript|data):", re.I)


def _click_every_link(page: Any) -> list[str]:
    """Click every link a student could have put in the page (each in place, coming back after); return any active target."""
    targets = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    active = [t for t in targets if ACTIVE_SCHEME.match(t or "")]
    here = page.url
    for index in range(len(targets)):
        link = page.locator("a[href]").nth(index)
        try:
            link.click(timeout=2000, force=True, no_wait_after=True)
            page.wait_for_timeout(200)
        except Exception:  # hidden or detached: its target was checked above
            pass
        if page.url != here:
            page.goto(here)
            page.wait_for_load_state("load")
    return active


def test_the_payload_runs_when_nothing_stops_it(tmp_path: Path) -> None:
    """Control: the same payload in a bare page does open a dialog and make its request."""
    _skip_without_browser()
    from grading_helpers import PAYLOAD_JS

    page_path = tmp_path / "bare.html"
    page_path.write_text(f"<html><head><title>bare</title></head><body><img src=x onerror=\"{PAYLOAD_JS}\"></body></html>")
    attempts = _Attempts()
    playwright, browser, page = _open(page_path.as_uri(), attempts)
    try:
        assert page.title() == "PWNED" and attempts.dialogs and attempts.requests
    finally:
        browser.close()
        playwright.stop()


def test_the_feedback_page_runs_nothing_the_student_wrote(graded_course) -> None:
    course, _ = graded_course
    page_path = course / "feedback" / "mallory" / QUIZ / f"{QUIZ}.html"
    attempts = _Attempts()
    playwright, browser, page = _open(page_path.as_uri(), attempts)
    try:
        assert _click_every_link(page) == []
        assert attempts.dialogs == [] and attempts.requests == []
        assert page.title() != "PWNED"
        assert page.locator("math").count() >= 1 or "$" not in page.content(), "mathematics is MathML, typeset with no script"
        (ROOT / "reports" / "hostile").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "reports" / "hostile" / "feedback_page.png"), full_page=True)
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture(scope="module")
def formgrader(graded_course):
    """The instructor's Jupyter server with nbgrader's formgrader, serving the course."""
    course, env = graded_course
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyter", "server", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (course.parent / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((course.parent / "server.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield course, port, token
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_formgrader_runs_nothing_the_student_wrote(formgrader) -> None:
    from nbgrader.api import Gradebook

    course, port, token = formgrader
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db) as gradebook:
        submission_id = gradebook.find_submission_notebook(QUIZ, QUIZ, "mallory").id
        before = {s: gradebook.find_submission(QUIZ, s).score for s in ("alice", "mallory")}
    config_before = _digest(course / "nbgrader_config.py")
    attempts = _Attempts()
    url = f"http://127.0.0.1:{port}/formgrader/submissions/{submission_id}/?index=0&token={token}"
    playwright, browser, page = _open(url, attempts)
    try:
        assert "mallory" not in page.title() or page.title() != "PWNED"
        assert page.locator("#notebook, .cell, .panel").count() > 0, "the formgrader showed the submission"
        page.screenshot(path=str(ROOT / "reports" / "hostile" / "formgrader.png"), full_page=True)
        assert _click_every_link(page) == [], "no link in the submission view has an active target"
        for view in ("manage_students", f"manage_submissions/{QUIZ}", f"gradebook/{QUIZ}/{QUIZ}", "manage_students/mallory"):
            page.goto(f"http://127.0.0.1:{port}/formgrader/{view}?token={token}")
            page.wait_for_load_state("load")
            page.wait_for_timeout(1500)
            assert page.title() != "PWNED", view
        assert attempts.dialogs == [] and attempts.requests == [], (attempts.dialogs, attempts.requests)
        assert page.title() != "PWNED"
    finally:
        browser.close()
        playwright.stop()
    with Gradebook(db) as gradebook:
        assert {s: gradebook.find_submission(QUIZ, s).score for s in ("alice", "mallory")} == before
    assert _digest(course / "nbgrader_config.py") == config_before
