"""The course opened as a learner opens it, and a headless Chromium.

Used by ``tests/test_browser.py`` and ``benchmarks/run.py``. Each
:class:`JupyterLab` runs the README's own command, ``./course open
--no-browser``, in a fresh clone of the course with an empty HOME, and reads
the URL it prints: the server, its root (the learner's ``work/`` folder) and
its Jupyter configuration are the product's, not the test's.
:func:`open_browser` launches Debian's Chromium (Playwright cannot download
its own browsers here) with every request that does not go to 127.0.0.1
aborted and recorded, and console errors recorded.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = Path(os.environ.get("KETAMINE_COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"
CURRENT_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the active tab
def browser_missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (./course test installs it)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)"
    return None


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True)
    return done.stdout


def clone_course(target: Path) -> Path:
    """A fresh git clone of the course as it is in this working tree (committed or not), sharing its ``.venv``.

    Every file git would track (``git ls-files --cached --others --exclude-standard``)
    is copied and committed in a new repository, so ``git status`` in the clone
    shows exactly what the learner's actions changed. The environment ``./course``
    made (``.venv``, whose stamp matches the unchanged ``pyproject.toml`` and
    ``requirements.lock``) is linked rather than rebuilt.
    """
    files = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    target.mkdir(parents=True)
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "-c", "user.name=course", "-c", "user.email=course@localhost", "commit", "-q", "-m", "the course")
    (target / ".git" / "info" / "exclude").write_text("/.venv\n")  # a symlink, which .gitignore's /.venv/ does not match
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def git_status(folder: Path) -> list[str]:
    """``git status --porcelain`` of a clone, one line per changed or new file (ignored files excluded)."""
    return _git(folder, "status", "--porcelain", "--untracked-files=all").splitlines()


PRINTED_URL = re.compile(r"(http://127\.0\.0\.1:(\d+)(/\S*?)\?token=([0-9a-f]+))")


class _Server:
    """A JupyterLab started as a process group, ready once ``/api/status`` answers; stopped with its whole group."""

    what = "JupyterLab"

    def __init__(self, log_path: Path, start_timeout_s: float) -> None:
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.token = ""

    def _start(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        if os.geteuid() == 0:  # JupyterLab refuses root unless asked (CI's root steps)
            command = [*command, "--allow-root"]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _address(self) -> bool:
        """Whether the port and token are known (a subclass may read them from the log)."""
        return bool(self.port)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.what} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._address():
                request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/status", headers={"Authorization": f"token {self.token}"})
                try:
                    with urllib.request.urlopen(request, timeout=2) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.what} did not answer within {self.start_timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, path: str) -> str:
        """The address that opens ``path`` (relative to the served folder) in a reset workspace."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{quote(path)}?reset&token={self.token}"

    def __exit__(self, *exc_info: Any) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=15)


class JupyterLab(_Server):
    """The course opened exactly as the README says, ``./course open --no-browser``, in a fresh clone.

    The learner's HOME is a new empty folder. The server, its root (the
    learner's ``work/`` folder), its configuration and the URL are all the
    command's own; the test only reads the URL the command prints. Use as a
    context manager; ``url(path)`` opens a file (relative to ``work/``) in a
    fresh workspace.
    """

    what = "./course open"

    def __init__(self, workdir: Path, start_timeout_s: float = 90.0) -> None:
        super().__init__(workdir / "course-open.log", start_timeout_s)
        self.workdir = workdir
        self.clone = workdir / "ketamine-course"
        self.course = self.clone / "work"  # what the server serves
        self.home = workdir / "home"
        self.printed_url = ""

    def _environment(self) -> dict[str, str]:
        self.home.mkdir()
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "PYTHON", "VIRTUAL_ENV"))}
        return {**keep, "HOME": str(self.home)}

    def _address(self) -> bool:
        printed = PRINTED_URL.search(self.log_path.read_text(errors="replace"))
        if printed:
            self.printed_url, self.port, self.token = printed.group(1), int(printed.group(2)), printed.group(4)
        return bool(printed)

    def __enter__(self) -> JupyterLab:
        clone_course(self.clone)
        self._start(["./course", "open", "--no-browser"], self.clone, self._environment())
        return self


class BinderLab(_Server):
    """JupyterLab as Binder starts it: in the repository postBuild ran in (which is HOME), from Binder's environment.

    Only what any launcher passes (address, port, token) is given on the
    command line; everything else (no news, no instructor tools) must come
    from what ``postBuild`` set up. ``env`` is the learner's environment
    (Binder has no bubblewrap: the caller's PATH lacks it).
    """

    what = "Binder's JupyterLab"

    def __init__(self, repo: Path, python: str, env: dict[str, str], log_path: Path, start_timeout_s: float = 90.0) -> None:
        super().__init__(log_path, start_timeout_s)
        self.repo, self.python, self.env = repo, python, env
        self.course = repo

    def __enter__(self) -> BinderLab:
        self.port, self.token = _free_port(), secrets.token_hex(24)
        command = [self.python, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.repo}"]
        self._start(command, self.repo, self.env)
        return self


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Watch:
    """What the page did that a learner should never see: console errors and requests off this machine."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"console error: {m}" for m in self.console_errors] + [f"request to an address not allowed: {u}" for u in self.outside_requests]


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


@contextmanager
def open_browser(viewport: tuple[int, int] = (1400, 1000), allowed: Callable[[str], bool] = _local) -> Iterator[tuple[Any, Watch]]:
    """A Chromium page with outside requests aborted and problems recorded in the returned :class:`Watch`.

    ``allowed`` says which addresses the page may request (default: 127.0.0.1 and data:, blob:, about:);
    Chromium routes file: requests too, so a static site can be held to its own folder.
    """
    from playwright.sync_api import sync_playwright

    watch = Watch()

    def guard(route: Any) -> None:
        if allowed(route.request.url):
            route.continue_()
        else:
            watch.outside_requests.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route("**/*", guard)
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and watch.console_errors.append(f"{message.text} ({message.location.get('url', '')})"))
            page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
            page.on("websocket", lambda ws: allowed(ws.url) or watch.outside_requests.append(ws.url))
            yield page, watch
        finally:
            browser.close()


# --------------------------------------------------------------------------
# JupyterLab, driven as a learner does
# --------------------------------------------------------------------------

ALL_CELLS_RUN = f"""() => {{
    const prompts = [...document.querySelectorAll('{CURRENT_NOTEBOOK} .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
}}"""


def open_notebook(page: Any, lab: _Server, path: str, timeout_ms: float = 60_000) -> None:
    """Open ``path`` fresh and wait until its kernel is started and idle."""
    page.goto(lab.url(path))
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=timeout_ms)
    page.locator("#jp-main-statusbar").get_by_text(KERNEL_IDLE, exact=True).wait_for(timeout=timeout_ms)


def run_all(page: Any, timeout_ms: float = 120_000) -> None:
    """Run → Run All Cells, then wait until every code cell shows an execution count and the kernel is idle."""
    page.locator("#jp-menu-panel").get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    page.wait_for_function(ALL_CELLS_RUN, timeout=timeout_ms)
    page.locator("#jp-main-statusbar").get_by_text(KERNEL_IDLE, exact=True).wait_for(timeout=timeout_ms)


# --------------------------------------------------------------------------
# What a learner sees, computed independently of the page
# --------------------------------------------------------------------------


def default_dose(weight_kg: float) -> Any:
    """What the dose calculator computes for a weight with its default regimen and vial (raises DoseInputError)."""
    from ketamine_course import dosing

    plan = dosing.regimen("antidepressant_research_iv")
    return dosing.calculate_dose(weight_kg, plan.typical_dose, plan, 10.0, duration_min=plan.duration_min)


def dose_line(weight_kg: float) -> str:
    """The ``Dose: ... mg`` line the dose calculator shows for a weight."""
    from ketamine_course.widgets import format_number

    return f"Dose: {format_number(default_dose(weight_kg).dose_mg)} mg"


def volume_line(weight_kg: float) -> str:
    """The ``Volume: ... mL`` line the dose calculator shows for a weight."""
    from ketamine_course.widgets import format_number

    return f"Volume: {format_number(default_dose(weight_kg).volume_ml)} mL"


# --------------------------------------------------------------------------
# Latency in the browser: key press -> what the learner sees
# --------------------------------------------------------------------------

_ARM = """([handleSelector, targetSelector, mode, expected]) => {
    window.__courseLatencyMs = null;
    const handle = document.querySelector(handleSelector);
    const target = document.querySelector(targetSelector);
    let pressed = null;
    handle.addEventListener('keydown', () => { pressed = performance.now(); }, {once: true, capture: true});
    const done = () => { window.__courseLatencyMs = performance.now() - pressed; };
    if (mode === 'text') {
        const observer = new MutationObserver(() => {
            const shown = target.querySelector('.t-dose-mg');
            if (pressed !== null && shown && shown.textContent === expected) { observer.disconnect(); done(); }
        });
        observer.observe(target, {subtree: true, childList: true, characterData: true});
    } else {
        const before = target.src;
        const loaded = () => {
            if (pressed === null || target.src === before) return;
            target.removeEventListener('load', loaded);
            requestAnimationFrame(done);  // the frame that shows the new image
        };
        target.addEventListener('load', loaded);
    }
}"""


def key_to_screen_ms(page: Any, handle_selector: str, target_selector: str, key: str, expected_text: str | None = None) -> float:
    """Milliseconds from a key press on a slider handle to the new dose text (``expected_text``) or the new plot image on screen.

    Timed inside the page (``performance.now()`` at the keydown, then the DOM
    mutation with the exact text, or the new image's load and the next frame),
    so Playwright's own overhead is not counted.
    """
    page.evaluate(_ARM, [handle_selector, target_selector, "text" if expected_text is not None else "image", expected_text])
    page.locator(handle_selector).press(key)
    page.wait_for_function("() => window.__courseLatencyMs !== null", timeout=30_000)
    return float(page.evaluate("() => window.__courseLatencyMs"))
