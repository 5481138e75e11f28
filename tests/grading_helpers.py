"""Building simulated classes from the quizzes' solutions."""

from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from ketamine_course.grading import BEGIN_HIDDEN, END_HIDDEN, QUIZZES, generate_release, grading_config

ROOT = Path(__file__).resolve().parents[1]


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def source_nb(quiz: str) -> NotebookNode:
    return read(ROOT / "source" / quiz / f"{quiz}.ipynb")


def release_nb(quiz: str) -> NotebookNode:
    return read(ROOT / "release" / quiz / f"{quiz}.ipynb")


def nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solutions(quiz: str) -> dict[str, str]:
    """Each answer cell's solution code, with the nbgrader markers removed."""
    answers = {}
    for cell in source_nb(quiz).cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            lines = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
            answers[meta["grade_id"]] = "\n".join(lines)
    return answers


def question_points(quiz: str) -> dict[str, int]:
    """Points of each test cell, by question ('q1', ...)."""
    return {nbgrader_meta(c)["grade_id"].split("_")[0]: nbgrader_meta(c)["points"] for c in source_nb(quiz).cells if nbgrader_meta(c).get("grade")}


def wrong(code: str) -> str:
    """A plausible wrong answer built from a solution."""
    choice = re.search(r'^(answer_q\d+) = "([A-D])"$', code, re.M)
    if choice:
        other = "A" if choice.group(2) != "A" else "B"
        return code + f'\n{choice.group(1)} = "{other}"'
    function = re.search(r"^def (\w+)\(", code, re.M)
    if function:
        name = function.group(1)
        return code + f"\n\n_right_{name} = {name}\ndef {name}(*args):\n    return _right_{name}(*args) * 1.5 + 1"
    variable = re.findall(r"^(answer_q\d+) =", code, re.M)[-1]
    return code + f"\n{variable} = {variable} * 1.5 + 1"


def submission(quiz: str, answers: dict[str, str] | None = None) -> NotebookNode:
    """The release notebook with the given answer cells filled in (others left blank)."""
    nb = copy.deepcopy(release_nb(quiz))
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def make_course(tmp: Path, quiz: str) -> Path:
    """A course folder with one quiz's source and a gradebook that knows it."""
    course = tmp / "course"
    shutil.copytree(ROOT / "source" / quiz, course / "source" / quiz)
    generate_release(course, quiz, db_url=f"sqlite:///{course / 'gradebook.db'}")
    return course


def submit(course: Path, quiz: str, student: str, nb: NotebookNode) -> None:
    folder = course / "submitted" / student / quiz
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{quiz}.ipynb")


def hidden_lines(quiz: str) -> list[str]:
    """Lines of the hidden tests that the release does not show, without their hint text (which feedback shows on purpose)."""
    release_text = "\n".join(c.source for c in release_nb(quiz).cells)
    lines = []
    for cell in source_nb(quiz).cells:
        if BEGIN_HIDDEN in cell.source:
            region = cell.source.split(BEGIN_HIDDEN, 1)[1].split(END_HIDDEN, 1)[0]
            for line in region.splitlines():
                line = re.sub(r'why="[^"]*"', "", line).strip()
                if len(line) > 12 and not line.startswith(("from ", "import ")) and line not in release_text:
                    lines.append(line)
    return lines


def solution_lines(quiz: str) -> list[str]:
    lines = []
    for code in solutions(quiz).values():
        source_lines = [line.strip() for line in code.splitlines()]
        release_text = "\n".join(c.source for c in release_nb(quiz).cells)
        lines += [line for line in source_lines if len(line) > 12 and line not in release_text]
    return lines


def page_text(path: Path) -> str:
    """An HTML page's visible text."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def config(course: Path, timeout_s: int = 30):
    return grading_config(course, f"sqlite:///{course / 'gradebook.db'}", timeout_s)


__all__ = [
    "QUIZZES", "ROOT", "read", "source_nb", "release_nb", "nbgrader_meta", "solutions", "question_points", "wrong",
    "submission", "make_course", "submit", "hidden_lines", "solution_lines", "page_text", "config",
]


def tree_digest(folder: Path) -> str:
    """One hash of every file's path and bytes under ``folder``: equal before and after means nothing was written."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


_ACTIVE_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "svg", "form", "base", "link", "applet", "portal"}


def active_content(markup: str) -> list[str]:
    """Everything in an HTML fragment or page that could run script or fetch something: empty for an inert page.

    Read with an HTML parser (not by searching strings): script-capable tags,
    event-handler attributes, ``srcdoc``, ``javascript:`` targets, images or
    links that load from off the page, meta refreshes, and TeX link commands a
    page's MathJax would typeset. Our own Content-Security-Policy ``<meta>`` is
    not counted.
    """
    from html.parser import HTMLParser

    found: list[str] = []

    class Finder(HTMLParser):
        verbatim = 0  # inside <pre>/<code>, which MathJax does not typeset

        def handle_endtag(self, tag: str) -> None:
            if tag in ("pre", "code"):
                self.verbatim = max(0, self.verbatim - 1)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("pre", "code"):
                self.verbatim += 1
            values = {name.lower(): (value or "") for name, value in attrs}
            if tag in _ACTIVE_TAGS:
                found.append(f"<{tag}>")
            if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
                found.append("<meta refresh>")
            for name, value in values.items():
                target = value.strip().lower()
                if name.startswith("on") or name == "srcdoc":
                    found.append(f"{tag}[{name}]")
                elif name in ("href", "src", "action", "formaction", "xlink:href", "background", "poster"):
                    if target.startswith(("javascript:", "vbscript:", "data:text/html")):
                        found.append(f"{tag}[{name}={value[:40]}]")
                    elif name != "href" and target.startswith(("http:", "https:", "//")):
                        found.append(f"{tag}[{name} loads {value[:40]}]")

        def handle_data(self, data: str) -> None:
            if not self.verbatim and re.search(r"\\(href|url|class|cssId|style|html)\s*\{", data):
                found.append(f"TeX link in text: {data.strip()[:40]}")

    Finder().feed(markup)
    return found


def notebook_markup(nb: NotebookNode) -> str:
    """What a viewer renders as HTML from a notebook: Markdown cells and HTML, SVG and Markdown outputs, joined."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        for output in cell.get("outputs", []):
            for mime in ("text/html", "image/svg+xml", "text/markdown", "application/javascript", "text/latex"):
                if mime in output.get("data", {}):
                    parts.append(f"<!-- {mime} -->" if mime != "text/html" else "")
                    parts.append(str(output["data"][mime]) if mime in ("text/html",) else f"<script>{mime}</script>")
    return "\n".join(parts)


# --------------------------------------------------------------------------
# A student who puts HTML and JavaScript in every channel a page shows
# --------------------------------------------------------------------------

# What any script smuggled into a page would do: the browser tests look for each of these.
PAYLOAD_JS = "document.title='PWNED';fetch('/pwned');alert('pwned')"


HTML_OUTPUTS = f"""
from IPython.display import HTML, Markdown, Latex, SVG, display
_js = {PAYLOAD_JS!r}
display(HTML("<script>" + _js + "</script><img src=x onerror=\\"" + _js + "\\"><b>bold</b>"))
display(Markdown("<svg onload=\\"" + _js + "\\"></svg> [link](javascript:" + _js + ") <details open ontoggle=\\"" + _js + "\\">d</details>"))
display({{"application/javascript": _js}}, raw=True)
display({{"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' onload=\\"" + _js + "\\"><script>" + _js + "</script></svg>"}}, raw=True)
display({{"text/html": "<iframe srcdoc=\\"<script>parent." + _js + "</script>\\"></iframe>"}}, raw=True, metadata={{"text/html": {{"isolated": True}}}})
display(Latex(r"$\\href{{javascript:" + _js + r"}}{{click}}$"))
display({{"text/html": "<a href=x onclick=\\"" + _js + "\\">x</a><form action=javascript:alert(1)><button>go</button></form><style>body{{background:url(http://192.0.2.1/x)}}</style>"}}, raw=True)
"""

MARKDOWN_CELLS = [
    f"<script>{PAYLOAD_JS}</script>",
    f"<img src=x onerror=\"{PAYLOAD_JS}\">",
    f"<svg onload=\"{PAYLOAD_JS}\"></svg>",
    f"<iframe srcdoc=\"<script>parent.{PAYLOAD_JS}</script>\"></iframe>",
    f"<details open ontoggle=\"{PAYLOAD_JS}\">open me</details>",
    f"[click me](javascript:{PAYLOAD_JS})",
    # Markdown left as text beside an element the cleaner removes: a viewer that renders the cell again makes it a link
    f"<script>x</script>[click me too](javascript:{PAYLOAD_JS})",
    f"<style>p{{}}</style>[and me](javascript:{PAYLOAD_JS}) <javascript:{PAYLOAD_JS}>",
    f"<iframe></iframe>\n\n[me as well](JaVaScRiPt:{PAYLOAD_JS}) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    # ... and inside an attribute, once a blank line splits its tag and the viewer reads the tag as text
    f'<?a>\n<span title="a\n\n[show the full answer](javascript:{PAYLOAD_JS})">t</span>\n?>',
    # ... and once the feedback step's cleaning has written the entities back as characters (a raw quote closes the title)
    f'<?a>\n<span title="a\n\nb">t</span><i title="z">t</i> [feedback link](javascript:{PAYLOAD_JS})\n?>',
    # TeX that MathJax reads across a tag: \href with a javascript: target
    f"&#36;\\hr<wbr>ef{{javascript:{PAYLOAD_JS}}}{{mathjax link}}&#36;",
    f"![tracker](http://192.0.2.1/pixel.png) ![svg](attachment:evil.svg) $\\href{{javascript:{PAYLOAD_JS}}}{{x}}$",
]


def with_hostile_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A submission with HTML and JavaScript in added Markdown and raw cells, an attachment and the notebook's metadata."""
    import base64

    svg = f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{PAYLOAD_JS}\"><script>{PAYLOAD_JS}</script></svg>"
    for text in MARKDOWN_CELLS:
        cell = nbformat.v4.new_markdown_cell(text)
        if "attachment:" in text:
            cell.attachments = {"evil.svg": {"image/svg+xml": base64.b64encode(svg.encode()).decode(), "text/html": f"<script>{PAYLOAD_JS}</script>"}}
        nb.cells.append(cell)
    raw = nbformat.v4.new_raw_cell(f"<script>{PAYLOAD_JS}</script>")
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.append(raw)
    nb.metadata["title"] = f"</title><script>{PAYLOAD_JS}</script>"
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}}
    return nb


# --------------------------------------------------------------------------
# A Jupyter server of the instructor's, and nbgrader's formgrader on it
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running Jupyter server: its address and token."""

    url: str
    token: str


def wait_until_answering(server: Server, timeout_s: float = 120, gone: Callable[[], str | None] = lambda: None) -> None:
    """Wait until a Jupyter server answers; raise when it does not in time, or when ``gone()`` says why it never will."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={server.token}", timeout=2):
                return
        except OSError:
            why = gone()
            if why is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server at {server.url} did not answer: {why or 'timed out'}") from None
            time.sleep(0.2)


@contextmanager
def jupyter_server(command: list[str], folder: Path, env: dict[str, str], log: Path, timeout_s: float = 120) -> Iterator[Server]:
    """Run ``command`` (``jupyter server``, ``jupyter lab`` ...) in ``folder`` on a free local port with a token of
    our own, until it answers; stop its whole process group after."""
    import secrets
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_hex(16)
    argv = [*command, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", token)
    try:
        wait_until_answering(server, timeout_s, lambda: None if process.poll() is None else log.read_text()[-3000:])
        yield server
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def formgrader_api(server: Server) -> Callable[..., Any]:
    """call(path, method="GET", body=None, raw=False): the server's answer to a request, as JSON (or text if raw)."""
    import json
    import urllib.request

    def call(path: str, method: str = "GET", body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{server.url}{path}", data=data, method=method, headers={"Authorization": f"token {server.token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode("utf-8")
        return text if raw else json.loads(text)

    return call
