"""A class on JupyterHub on this machine: real accounts, PAM log-in, nbgrader's exchange, in Chromium.

The hub is the course's own (``hub/jupyterhub_config.py``, started as ``./course hub`` starts it), run as
root as a one-machine hub is; each user's server runs as that user from the course's ``.venv``. Four
real accounts are made with passwords (an instructor and three students) and removed afterwards.
Each student logs in, fetches the quiz from the Assignments tab, answers it (Ada right, Ben with one
wrong answer, Cy blank), saves and submits. The instructor collects, grades sandboxed as a normal user
with ``ketamine-grade class`` and releases feedback (the README's commands, run in the instructor's
account); each student logs in again and fetches feedback: their own, and only theirs.

It needs root (it makes accounts and runs the hub as root), so the normal-user suite skips it and
``.ci/run`` runs it as root afterwards (``./course test tests/test_hub.py``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from browser_helpers import browser_missing, clone_course, open_browser
from conftest import sandbox_or_skip
from grading_helpers import ROOT, hidden_lines, page_text, question_points, solutions, wrong
from ketamine_course.grading.config import COURSE_ID

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: CI runs these on the system Python only
QUIZ = "quiz01_history"
INSTRUCTOR = "kchteach"
STUDENTS = ("kchada", "kchben", "kchcy")


def _need(reason: str | None) -> None:
    if reason is None:
        return
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port_block(size: int = 3) -> int:
    """A port p with p..p+size-1 free on 127.0.0.1 (the hub's proxy, proxy API and hub)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free block of ports on 127.0.0.1")


def _as(user: str, script: str, env: dict[str, str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a bash script in ``user``'s account, in their home, with ``env`` (what their hub server has)."""
    home = f"/home/{user}"
    pairs = [f"{k}={v}" for k, v in {"HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8", **env}.items()]
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *pairs, "bash", "-c", f"cd {home} && {script}"],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )


@dataclass
class Hub:
    url: str
    passwords: dict[str, str]
    exchange: Path
    base: Path
    log: Path
    server_env: dict[str, str]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _kill_processes_of(uids: set[int]) -> None:
    """Stop what the test's accounts still run (their hub servers and kernels), by process id."""
    import psutil

    for process in psutil.process_iter(["uids"]):
        try:
            if process.info["uids"] and process.info["uids"].real in uids:
                process.kill()
        except psutil.Error:
            pass


@pytest.fixture
def hub(sandbox: bool) -> Iterator[Hub]:
    _need(None if os.geteuid() == 0 else "needs root: it makes real accounts and runs the hub as root (.ci/run runs it so)")
    _need(browser_missing())
    _need(None if shutil.which("npm") else "needs npm for JupyterHub's proxy (Debian: apt-get install nodejs npm)")
    sandbox_or_skip()
    setup = subprocess.run([str(ROOT / "course"), "hub-setup"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert setup.returncode == 0, setup.stdout + setup.stderr

    users = (INSTRUCTOR, *STUDENTS)
    for user in users:
        subprocess.run(["userdel", "-r", user], capture_output=True, check=False)  # left over from an interrupted run
    passwords = {user: secrets.token_urlsafe(12) for user in users}
    base = Path(tempfile.mkdtemp(prefix="kc-hub-"))
    base.chmod(0o755)
    process = None
    try:
        for user in users:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)
        subprocess.run(["chpasswd"], input="".join(f"{u}:{p}\n" for u, p in passwords.items()), text=True, check=True)
        # The administrator's one-time exchange, as the README says (install -d -m 1777).
        exchange = base / "exchange"
        subprocess.run(["install", "-d", "-m", "1777", str(exchange)], check=True)
        # The instructor's own copy of the course (sharing this course's environment).
        course = clone_course(Path(f"/home/{INSTRUCTOR}/ketamine-course"))
        subprocess.run(["chown", "-R", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course)], check=True)
        subprocess.run(["chown", "-h", f"{INSTRUCTOR}:{INSTRUCTOR}", str(course / ".venv")], check=True)

        port = _free_port_block()
        env = {
            **os.environ,
            "KETAMINE_HUB_INSTRUCTORS": INSTRUCTOR,
            "KETAMINE_HUB_STUDENTS": ",".join(STUDENTS),
            "KETAMINE_HUB_PORT": str(port),
            "KETAMINE_HUB_STATE": str(base / "state"),
            "KETAMINE_EXCHANGE": str(exchange),
        }
        log = base / "hub.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "jupyterhub"), "-f", str(ROOT / "hub" / "jupyterhub_config.py")],
                cwd=base, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/hub/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, f"the hub did not start:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        server_env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin", "KETAMINE_EXCHANGE": str(exchange)}
        yield Hub(url, passwords, exchange, base, log, server_env)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the hub stops every user's server as it exits
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        import pwd

        uids = set()
        for user in users:
            try:
                uids.add(pwd.getpwnam(user).pw_uid)
            except KeyError:
                pass
        _kill_processes_of(uids)
        if (base / "hub.log").exists():
            (ROOT / "reports" / "hub").mkdir(parents=True, exist_ok=True)
            shutil.copy(base / "hub.log", ROOT / "reports" / "hub" / "hub.log")
        for user in users:
            subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _log_in(page: Any, hub: Hub, user: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(hub.passwords[user])
    page.locator("#login_submit").click()
    page.wait_for_url(re.compile(rf"/user/{user}/tree"), timeout=180_000)


def _assignments_tab(page: Any) -> None:
    """The Assignments tab, opened from the Nbgrader menu the first time (JupyterHub's tree page keeps it after that)."""
    tab = page.get_by_role("tab", name="Assignments")
    page.get_by_role("tab", name="Files").wait_for(timeout=60_000)
    if not tab.count():
        page.get_by_role("menuitem", name="Nbgrader").click()
        page.get_by_role("menuitem", name="Assignment List").click()
    tab.click()
    page.locator("#released_assignments_list").wait_for(timeout=60_000)


def _answer(page: Any, cell: Any, code: str) -> None:
    """Replace an answer cell's text as a student would: click in it, select all, type the answer."""
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")


def _screenshot(page: Any, name: str) -> None:
    folder = ROOT / "reports" / "hub"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _saved(path: Path, answers: dict[str, str]) -> bool:
    """Whether the student's saved quiz holds every answer typed."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # caught mid-write
        return False
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    return all(sources.get(grade_id) == code for grade_id, code in answers.items())


def _fetch_answer_submit(page: Any, hub: Hub, user: str, answers: dict[str, str]) -> None:
    from playwright.sync_api import expect

    _log_in(page, hub, user)
    _assignments_tab(page)
    released = page.locator("#released_assignments_list")
    expect(released).to_contain_text(QUIZ, timeout=60_000)
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list")
    expect(fetched).to_contain_text(QUIZ, timeout=60_000)

    path = Path(f"/home/{user}/{QUIZ}/{QUIZ}.ipynb")
    quiz = nbformat.read(path, as_version=4)
    if answers:
        page.goto(f"{hub.url}/user/{user}/notebooks/{QUIZ}/{QUIZ}.ipynb")
        cells = page.locator(".jp-Notebook .jp-Cell")
        expect(cells).to_have_count(len(quiz.cells), timeout=60_000)
        position = {c.metadata.get("nbgrader", {}).get("grade_id", c.id): i for i, c in enumerate(quiz.cells)}
        for grade_id, code in answers.items():
            _answer(page, cells.nth(position[grade_id]), code)
        page.locator('[data-command="docmanager:save"]').first.click()  # the toolbar's Save button
        deadline = time.monotonic() + 30
        while not _saved(path, answers):
            if time.monotonic() > deadline:
                _screenshot(page, f"{user}-not-saved")
                saved = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(path, as_version=4).cells}
                differ = {g: (saved.get(g), code) for g, code in answers.items() if saved.get(g) != code}
                raise AssertionError(f"the answers were not saved (saved, typed): {differ}")
            page.wait_for_timeout(300)  # not time.sleep: Playwright lets the page's requests through only while it runs
        page.goto(f"{hub.url}/user/{user}/tree")
        _assignments_tab(page)
    fetched = page.locator("#fetched_assignments_list")
    expect(fetched).to_contain_text(QUIZ, timeout=60_000)
    fetched.get_by_role("button", name="Submit").click()
    expect(page.locator("#submitted_assignments_list")).to_contain_text(QUIZ, timeout=60_000)
    page.goto(f"{hub.url}/hub/logout")


def _fetch_feedback(page: Any, hub: Hub, user: str) -> None:
    from playwright.sync_api import expect

    _log_in(page, hub, user)
    _assignments_tab(page)
    submitted = page.locator("#submitted_assignments_list")
    expect(submitted).to_contain_text(QUIZ, timeout=60_000)
    submitted.get_by_role("button", name="Fetch Feedback").click()
    deadline = time.monotonic() + 60
    while not list(Path(f"/home/{user}/{QUIZ}/feedback").rglob(f"{QUIZ}.html")):
        assert time.monotonic() < deadline, f"{user}: no feedback arrived"
        page.wait_for_timeout(500)
    page.goto(f"{hub.url}/hub/logout")


def test_a_class_on_jupyterhub(hub: Hub) -> None:
    started = time.monotonic()
    teach = _as(
        INSTRUCTOR,
        "cd ketamine-course && nbgrader generate_assignment quiz01_history --force && nbgrader release_assignment quiz01_history --force",
        hub.server_env,
    )
    assert teach.returncode == 0, teach.stdout + teach.stderr

    right = solutions(QUIZ)
    q3 = next(grade_id for grade_id in right if grade_id.startswith("q3"))
    answers = {"kchada": right, "kchben": {**right, q3: wrong(right[q3])}, "kchcy": {}}
    with open_browser() as (page, _watch):
        # The roles: the instructor has the formgrader; a student has the Assignments tab and no formgrader.
        _log_in(page, hub, INSTRUCTOR)
        formgrader = page.goto(f"{hub.url}/user/{INSTRUCTOR}/formgrader")
        assert formgrader is not None and formgrader.status == 200
        page.goto(f"{hub.url}/hub/logout")
        for user, answer in answers.items():
            _fetch_answer_submit(page, hub, user, answer)
        _log_in(page, hub, STUDENTS[0])
        student_formgrader = page.goto(f"{hub.url}/user/{STUDENTS[0]}/formgrader")
        assert student_formgrader is not None and student_formgrader.status == 404
        page.goto(f"{hub.url}/hub/logout")

        grade = _as(
            INSTRUCTOR,
            "cd ketamine-course && nbgrader collect quiz01_history && ketamine-grade class quiz01_history --jobs 2"
            " && nbgrader generate_feedback quiz01_history && nbgrader release_feedback quiz01_history",
            hub.server_env,
        )
        assert grade.returncode == 0, grade.stdout + grade.stderr
        assert "WARNING: grading without isolation" not in grade.stderr

        for user in answers:
            _fetch_feedback(page, hub, user)

    points = question_points(QUIZ)
    total = sum(points.values())
    expected = {"kchada": total, "kchben": total - points["q3"], "kchcy": 0}
    for user, score in expected.items():
        pages = list(Path(f"/home/{user}/{QUIZ}/feedback").rglob(f"{QUIZ}.html"))
        assert len(pages) == 1, f"{user} should have exactly their own feedback page, got {pages}"
        text = page_text(pages[0])
        assert re.search(rf"\b{score:g}\.?0*\s*/\s*{total:g}", text), f"{user}'s page does not show {score:g}/{total:g}"
        for line in hidden_lines(QUIZ):
            assert line not in text
    # Nobody reads anyone else's work through the exchange: inbound and feedback cannot be listed by a student.
    course = hub.exchange / COURSE_ID
    for folder in ("inbound", "feedback"):
        peek = _as(STUDENTS[0], f"ls {course / folder}", hub.server_env)
        assert peek.returncode != 0, f"a student could list {folder}: {peek.stdout}"
    assert oct(hub.exchange.stat().st_mode & 0o7777) == "0o1777"
    assert oct((course / "inbound").stat().st_mode & 0o777) == "0o733"
    assert oct((course / "outbound").stat().st_mode & 0o777) == "0o755"
    print(f"class on JupyterHub: {time.monotonic() - started:.0f} s")
