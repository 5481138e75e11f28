"""The course as a static website: ``./course site`` builds ``build/site/``.

The site is built from the same notebooks the learner opens, in four steps:

1. **Execute** every lesson in ``notebooks/`` with nbclient (a cell error or
   any output on stderr stops the build).
2. **Stage** a copy for Sphinx in ``build/site-src/`` with the repository's
   layout (``notebooks/``, ``release/<quiz>/``), so the lessons' own relative
   links work unchanged. In the copy, ``[@id]`` citations become author-year
   links to the lesson's reference list, which is rendered from
   ``data/references.csv`` with an anchor per entry; widgets keep their still
   picture and a line saying what is interactive in JupyterLab (their live
   view needs a kernel); every page gets a link that opens it on Binder. The
   quizzes are the student versions from ``release/``, never executed.
3. **Build** with Sphinx, MyST-NB and the Jupyter Book theme
   (``book/conf.py``); any Sphinx warning fails the build. Maths is converted
   to MathML at build time, so nothing is loaded at view time.
4. **Check** every page: each link, image, script and style sheet must resolve
   to a file of the site (and each ``#anchor`` to an element in it); only
   ordinary links (a DOI, Binder) may point elsewhere.

Sphinx, MyST-NB and the theme come from the ``site`` extra
(``pip install -e .[site]``; ``./course setup`` installs it).
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .data import format_reference, load_table
from .lesson import CITATION, CITATION_LINKS, GENERATED, UNITS, cited_ids

__all__ = [
    "BINDERHUB_URL",
    "SiteBuildError",
    "author_year_labels",
    "binder_url",
    "build_site",
    "check_site",
    "link_citations",
    "link_plain_citations",
    "name_plain_citations",
    "repository_url",
    "sphinx_build",
]

ROOT = Path(__file__).resolve().parents[2]
"""The repository (the site is built from a source checkout, not from an installed wheel)."""

BINDERHUB_URL = "https://mybinder.org"
START_PAGE = "notebooks/00_start_here.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
EXECUTION_TIMEOUT_S = 120


class SiteBuildError(RuntimeError):
    """The site could not be built as promised (a cell error, a Sphinx warning, a broken link)."""


# --------------------------------------------------------------------------
# Where the course lives: one repository URL (pyproject.toml), and Binder links derived from it
# --------------------------------------------------------------------------


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The course's public repository, from ``[project.urls] Repository`` in pyproject.toml."""
    import tomllib

    urls = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("urls", {})
    url = urls.get("Repository", "")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SiteBuildError(
            f"pyproject.toml: [project.urls] Repository must be https://github.com/OWNER/NAME, not {url!r}"
        )
    return url


def binder_url(path: str, repository: str | None = None) -> str:
    """The Binder address that opens ``path`` (relative to the repository root) in JupyterLab.

    >>> binder_url("notebooks/00_start_here.ipynb", "https://github.com/owner/course")
    'https://mybinder.org/v2/gh/owner/course/HEAD?urlpath=lab/tree/notebooks/00_start_here.ipynb'
    """
    repository = repository or repository_url()
    owner_name = urlsplit(repository).path.strip("/")
    return f"{BINDERHUB_URL}/v2/gh/{owner_name}/HEAD?urlpath=lab/tree/{path}"


# --------------------------------------------------------------------------
# Citations: [@id] -> an author-year link to the lesson's reference list
# --------------------------------------------------------------------------

_INITIALS = re.compile(r"^(?P<surname>.+?)\s+[A-Z]{1,3}(?:\s+Jr)?$")


def _first_author_group(authors: str) -> tuple[list[str], bool]:
    """The surnames (or organisation) of the first author group, and whether more authors follow."""
    group = authors.split(";")[0]
    group = re.sub(r"\([^)]*\)", "", group).strip()  # "Brain Sciences review (authors not verified)"
    parts = [p.strip() for p in group.split(",") if p.strip()]
    more = any(p.lower().rstrip(".") == "et al" for p in parts) or ";" in authors
    people = [p for p in parts if p.lower().rstrip(".") != "et al"]
    if not people:
        return [], more
    matches = [_INITIALS.match(p) for p in people]
    if all(matches):
        return [m["surname"] for m in matches if m], more
    return [", ".join(people)], more  # an organisation: "US Food and Drug Administration"


def _lead(authors: str, title: str) -> str:
    """'Zanos et al.', 'Lodge & Mercier', 'Andrade', 'Pfizer'; the title's first words if no author was seen."""
    names, more = _first_author_group(authors)
    if not names:
        words = title.split()
        return " ".join(words[:4]) + (" …" if len(words) > 4 else "")
    if len(names) > 2 or (more and names):
        return f"{names[0]} et al."
    return " & ".join(names)


def author_year_labels(references: Iterable[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """Reference id -> 'Zanos et al. 2018', with a, b, c added where two references would read the same.

    >>> author_year_labels([{"id": "a", "authors": "Lodge D, Mercier MS", "year": 2015, "title": "t"},
    ...                     {"id": "b", "authors": "Pfizer", "year": 2024, "title": "t"},
    ...                     {"id": "c", "authors": "Pfizer", "year": 2024, "title": "t"}])
    {'a': 'Lodge & Mercier 2015', 'b': 'Pfizer 2024a', 'c': 'Pfizer 2024b'}
    """
    rows = list(load_table("references") if references is None else references)
    plain = {row["id"]: f"{_lead(row['authors'], row['title'])} {row['year']}" for row in rows}
    labels: dict[str, str] = {}
    for label in dict.fromkeys(plain.values()):
        ids = [ref_id for ref_id, text in plain.items() if text == label]
        if len(ids) == 1:
            labels[ids[0]] = label
        else:
            labels.update({ref_id: f"{label}{chr(ord('a') + i)}" for i, ref_id in enumerate(ids)})
    return labels


def anchor(reference_id: str) -> str:
    """The id of a reference's entry in a page's reference list."""
    return f"ref-{reference_id}"


def link_citations(markdown: str, labels: Mapping[str, str]) -> str:
    """Replace each ``[@id]`` / ``[@a; @b]`` with author-year links to the page's reference list.

    >>> link_citations("as shown [@a; @b].", {"a": "Lodge & Mercier 2015", "b": "Pfizer 2024"})
    ... # doctest: +NORMALIZE_WHITESPACE
    'as shown (<a class="citation" href="#ref-a">Lodge &amp; Mercier 2015</a>;
    <a class="citation" href="#ref-b">Pfizer 2024</a>).'
    """

    def linked(match: re.Match[str]) -> str:
        ids = [part.strip().lstrip("@") for part in match.group(1).split(";")]
        links = [f'<a class="citation" href="#{anchor(i)}">{html.escape(labels[i])}</a>' for i in ids]
        return "(" + "; ".join(links) + ")"

    return CITATION.sub(linked, markdown)


_RENDERED_ID = re.compile(r'"@([a-z0-9_]+)"\)')


def link_rendered_citations(markdown: str, labels: Mapping[str, str]) -> str:
    """Citations as the lessons render them (author-year links whose title is ``@id``) -> links to the page's
    reference list.

    >>> link_rendered_citations('as shown ([Lodge 2015](https://doi.org/10.1/x "@a")).', {"a": "Lodge & Mercier 2015"})
    'as shown (<a class="citation" href="#ref-a">Lodge &amp; Mercier 2015</a>).'
    """

    def linked(match: re.Match[str]) -> str:
        ids = _RENDERED_ID.findall(match.group(0))
        return (
            "(" + "; ".join(f'<a class="citation" href="#{anchor(i)}">{html.escape(labels[i])}</a>' for i in ids) + ")"
        )

    return CITATION_LINKS.sub(linked, markdown)


_PLAIN_CITE = re.compile(r"\[([a-z0-9_]+(?:;\s*[a-z0-9_]+)*)\]")


def link_plain_citations(markdown: str, labels: Mapping[str, str], listed: set[str]) -> str:
    """``[id1; id2]`` as the course's fact boxes print them -> author-year text, linked where the page lists it."""

    def linked(match: re.Match[str]) -> str:
        ids = [part.strip() for part in match.group(1).split(";")]
        if not all(i in labels for i in ids):
            return match.group(0)
        parts = [
            f'<a class="citation" href="#{anchor(i)}">{html.escape(labels[i])}</a>' if i in listed
            else html.escape(labels[i])
            for i in ids
        ]
        return "(" + "; ".join(parts) + ")"

    return _PLAIN_CITE.sub(linked, markdown)


def name_plain_citations(text: str, labels: Mapping[str, str]) -> str:
    """``[id1; id2]`` in printed text -> '(Author 2001; Author 2002)' (printed text holds no links).

    >>> name_plain_citations("range 0.1-1 mg/kg [a; b]", {"a": "Fava et al. 2020", "b": "Berman et al. 2000"})
    'range 0.1-1 mg/kg (Fava et al. 2020; Berman et al. 2000)'
    """

    def named(match: re.Match[str]) -> str:
        ids = [part.strip() for part in match.group(1).split(";")]
        return "(" + "; ".join(labels[i] for i in ids) + ")" if all(i in labels for i in ids) else match.group(0)

    return _PLAIN_CITE.sub(named, text)


_URL = re.compile(r"https?://\S+")


def reference_list_html(ids: list[str], labels: Mapping[str, str]) -> str:
    """A lesson's reference list with an anchor per entry, each entry from :func:`format_reference`."""
    if not ids:
        return "<p><em>No sources cited.</em></p>"
    items = []
    for ref_id in ids:
        text = html.escape(format_reference(ref_id), quote=False)
        text = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', text)
        items.append(f'<li id="{anchor(ref_id)}"><strong>{html.escape(labels[ref_id])}.</strong> {text}</li>')
    return '<ol class="course-references">\n' + "\n".join(items) + "\n</ol>"


# --------------------------------------------------------------------------
# Execute and stage
# --------------------------------------------------------------------------


def execute_lesson(path: Path) -> Any:
    """The lesson executed in its own folder; raises :class:`SiteBuildError` on a cell error or stderr output."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=EXECUTION_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        raise SiteBuildError(f"{path.name}: a cell failed:\n{error}") from None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                raise SiteBuildError(f"{path.name}: a cell wrote to stderr:\n{cell.source}\n---\n{output.text}")
    return nb


def _markdown_cell(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_markdown_cell(text)


def _launch_cell(repo_path: str, repository: str) -> Any:
    url = binder_url(repo_path, repository)
    return _markdown_cell(
        f'<p class="course-launch"><a class="course-binder-link" href="{html.escape(url)}">'
        "Launch this page on Binder</a> "
        "to run it in JupyterLab, with the sliders and exercises live (Binder sessions are temporary).</p>"
    )


def stage_lesson(nb: Any, listed: list[str], repo_path: str, labels: Mapping[str, str], repository: str) -> Any:
    """An executed lesson as the site shows it (see the module docstring); ``listed`` are the ids it cites."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if cell.metadata.get(GENERATED, {}).get("generated", {}).get("references"):
                cell.source = reference_list_html(listed, labels)  # the same list, with an anchor per entry
            else:
                cell.source = link_citations(link_rendered_citations(cell.source, labels), labels)
            continue
        if cell.cell_type != "code":
            continue
        if "references(" in cell.source:
            cell.outputs = [_html_output(reference_list_html(listed, labels))]
            continue
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = name_plain_citations(output.text, labels)
            data = output.get("data", {})
            data.pop(WIDGET_MIME, None)  # the live view needs a kernel; text/html holds the still picture
            for mime in ("text/markdown", "text/html"):  # fact boxes and widget read-outs print [id]
                if mime in data:
                    data[mime] = link_plain_citations(data[mime], labels, set(listed))
    nb.metadata.pop("widgets", None)
    nb.cells.insert(0, _launch_cell(repo_path, repository))
    return nb


def _html_output(text: str) -> Any:
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/html": text})


def stage_quiz(path: Path, repo_path: str, repository: str) -> Any:
    """The student version of a quiz, unexecuted, with a note on how to take it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells.insert(0, _launch_cell(repo_path, repository))
    nb.cells.insert(
        2,  # after the quiz's title and instructions
        _markdown_cell(
            "> **This page shows the quiz as a learner receives it, unanswered.** To answer it, open it in JupyterLab "
            "(the link above, or `./course open` on your own machine), replace each `raise NotImplementedError()` "
            "with your answer and run the check below it; `./course grade` then grades your copy."
        ),
    )
    return nb


def _toctree_cell() -> Any:
    entries = []
    for unit in UNITS:
        entries.append(Path(unit.notebook).stem)
        entries.append(str(Path(unit.quiz_path).with_suffix("")))
    body = "\n".join(entries)
    return _markdown_cell(f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{body}\n```")


def stage(stage_dir: Path, repository: str, root: Path = ROOT, log: Any = print) -> None:
    """Write the executed lessons and the student quizzes, ready for Sphinx, into ``stage_dir``."""
    import nbformat

    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    labels = author_year_labels()
    lessons = sorted((root / "notebooks").glob("*.ipynb"))
    expected = [Path(START_PAGE).name] + [u.notebook for u in UNITS]
    if [p.name for p in lessons] != expected:
        raise SiteBuildError(f"notebooks/ holds {[p.name for p in lessons]}, the course map lists {expected}")
    for path in lessons:
        started = time.perf_counter()
        repo_path = f"notebooks/{path.name}"
        nb = stage_lesson(execute_lesson(path), cited_ids(path), repo_path, labels, repository)
        if repo_path == START_PAGE:
            nb.cells.append(_toctree_cell())
        (stage_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, stage_dir / repo_path)
        log(f"site: executed {repo_path} ({time.perf_counter() - started:.1f} s)")
    for unit in UNITS:
        repo_path = f"release/{unit.quiz}/{unit.quiz}.ipynb"
        target = stage_dir / repo_path
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(stage_quiz(root / repo_path, repo_path, repository), target)


# --------------------------------------------------------------------------
# Check the built pages
# --------------------------------------------------------------------------


_LOADS = frozenset(
    {("img", "src"), ("script", "src"), ("link", "href"), ("iframe", "src"), ("source", "src"), ("video", "src")}
)
"""(tag, attribute) pairs whose address the browser fetches with the page."""


class _PageLinks(HTMLParser):
    """Every id in a page, and every address it links to or loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []  # followed by a reader: <a href>
        self.loads: list[str] = []  # fetched by the browser with the page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            if tag == "a" and name == "href":
                self.links.append(value)
            elif (tag, name) in _LOADS:
                self.loads.append(value)


def _parse(path: Path) -> _PageLinks:
    parser = _PageLinks()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def _pages(site: Path) -> list[Path]:
    """The site's pages (not the theme's template fragments under ``_static/``)."""
    return [p for p in sorted(site.rglob("*.html")) if "_static" not in p.relative_to(site).parts]


def check_site(site: Path) -> list[str]:
    """Problems with the built site: links or loads that do not resolve to its own files, or anchors not in the page."""
    problems: list[str] = []
    pages = {path: _parse(path) for path in _pages(site)}
    if not (site / "index.html").is_file():
        problems.append("no index.html at the root")
    for page, parsed in pages.items():
        where = page.relative_to(site)
        for address, is_load in [(a, False) for a in parsed.links] + [(a, True) for a in parsed.loads]:
            parts = urlsplit(address)
            if parts.scheme in ("http", "https", "mailto") or address.startswith("//"):
                if is_load or address.startswith("//"):
                    problems.append(f"{where}: loads {address} from outside the site")
                continue
            if parts.scheme == "data":
                continue
            if parts.scheme:
                problems.append(f"{where}: unexpected address {address}")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if parts.path.endswith("/"):
                target = target / "index.html"
            try:
                target.relative_to(site.resolve())
            except ValueError:
                problems.append(f"{where}: {address} points outside the site")
                continue
            if not target.exists():
                problems.append(f"{where}: broken link {address}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: {address}: no element with id {parts.fragment!r}")
    return problems


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildReport:
    """What a build produced."""

    out_dir: Path
    pages: int
    size_bytes: int
    seconds: float


def _redirect_page(target: str) -> str:
    safe = html.escape(target, quote=True)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={safe}">\n'
        "<title>Ketamine: an interactive pharmacology course</title></head>\n"
        f'<body><p>The course starts at <a href="{safe}">Start here</a>.</p></body></html>\n'
    )


def sphinx_build(stage_dir: Path, out_dir: Path, doctrees: Path) -> None:
    """Render the staged notebooks with ``book/conf.py``; any warning raises :class:`SiteBuildError`."""
    from sphinx.cmd.build import build_main

    for folder in (out_dir, doctrees):
        if folder.exists():
            shutil.rmtree(folder)
    status = build_main(
        ["-b", "html", "-W", "--keep-going", "-n", "-q", "-c", str(ROOT / "book"), "-d", str(doctrees), str(stage_dir),
         str(out_dir)]
    )
    if status != 0:
        raise SiteBuildError("Sphinx reported warnings or errors (above); the site was not built")
    build_info = out_dir / ".buildinfo"
    if build_info.is_file():
        build_info.unlink()


def build_site(
    out_dir: Path = ROOT / "build" / "site", work_dir: Path = ROOT / "build", log: Any = print
) -> BuildReport:
    """Execute, stage, build with Sphinx and check; raises :class:`SiteBuildError` on any problem."""
    started = time.perf_counter()
    repository = repository_url()
    stage_dir, doctrees = work_dir / "site-src", work_dir / "site-doctrees"
    stage(stage_dir, repository, log=log)
    log("site: building the pages with Sphinx")
    sphinx_build(stage_dir, out_dir, doctrees)
    (out_dir / "index.html").write_text(_redirect_page(str(Path(START_PAGE).with_suffix(".html"))), encoding="utf-8")
    problems = check_site(out_dir)
    if problems:
        raise SiteBuildError("the built site has broken or outside links:\n" + "\n".join(problems))
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    return BuildReport(
        out_dir, len(_pages(out_dir)), sum(p.stat().st_size for p in files), time.perf_counter() - started
    )


def main(argv: list[str] | None = None) -> int:
    """``./course site``: build the static site into build/site/."""
    parser = argparse.ArgumentParser(prog="course site", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="output folder (default: build/site)")
    args = parser.parse_args(argv)
    try:
        report = build_site(args.out.resolve())
    except SiteBuildError as error:
        print(f"course site: {error}", file=sys.stderr)
        return 1
    print(
        f"site: {report.pages} pages, {report.size_bytes / 1e6:.1f} MB in {report.out_dir} "
        f"({report.seconds:.0f} s); open {report.out_dir / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
