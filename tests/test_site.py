"""The static site: ``./course site`` is run once per session, then its pages are read as files and in Chromium.

The build runs the README's command as a learner would (``./course site``,
into ``build/site/``). The pages are then checked for what a reader must see
(every lesson with its outputs, figures with alt text, widgets as still
pictures, author-year citations linked to a reference list, maths as MathML,
a Binder link, the quizzes as their student versions) and for what they must
never show (a solution or hidden test, a raw ``[@id]`` key, a cell error).
In Chromium every page is opened from disk with every request outside
``build/site/`` aborted and recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ketamine_course.lesson import UNITS, cited_ids
from ketamine_course.site import (
    START_PAGE,
    author_year_labels,
    binder_url,
    check_site,
    link_citations,
    link_plain_citations,
    repository_url,
)

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
SCREENSHOTS = ROOT / "reports" / "site"
LESSONS = [START_PAGE] + [f"notebooks/{u.notebook}" for u in UNITS]
QUIZZES = [f"release/{u.quiz}/{u.quiz}.ipynb" for u in UNITS]
READING_ORDER = [START_PAGE] + [p for u in UNITS for p in (f"notebooks/{u.notebook}", f"release/{u.quiz}/{u.quiz}.ipynb")]


def _html(repo_path: str) -> str:
    return str(Path(repo_path).with_suffix(".html"))


def _cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _title(repo_path: str) -> str:
    """The notebook's own first heading: the page must show it as its h1."""
    for cell in _cells(ROOT / repo_path):
        match = re.search(r"^# (.+)$", "".join(cell["source"]), re.MULTILINE)
        if cell["cell_type"] == "markdown" and match:
            return match.group(1).strip()
    raise AssertionError(f"{repo_path} has no title")


def _text(html_text: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(html_text, "html.parser").get_text()


# --------------------------------------------------------------------------
# Citations and links (no build needed)
# --------------------------------------------------------------------------


def test_author_year_labels_read_people_organisations_and_missing_authors() -> None:
    rows = [
        {"id": "one", "authors": "Andrade C", "year": 2019, "title": "t"},
        {"id": "two", "authors": "Lodge D, Mercier MS", "year": 2015, "title": "t"},
        {"id": "many", "authors": "Zarate CA Jr, Singh JB, Carlson PJ, et al.", "year": 2006, "title": "t"},
        {"id": "etal", "authors": "Roth BL, et al.", "year": 2013, "title": "t"},
        {"id": "org", "authors": "US Food and Drug Administration", "year": 2025, "title": "t"},
        {"id": "note", "authors": "Brain Sciences review (authors not verified)", "year": 2020, "title": "t"},
        {"id": "none", "authors": "(authors not seen)", "year": 2024, "title": "So how special is special K? A review"},
        {"id": "pair", "authors": "Popova V, et al.; Fedgchin M, et al.", "year": 2019, "title": "t"},
    ]
    assert author_year_labels(rows) == {
        "one": "Andrade 2019",
        "two": "Lodge & Mercier 2015",
        "many": "Zarate et al. 2006",
        "etal": "Roth et al. 2013",
        "org": "US Food and Drug Administration 2025",
        "note": "Brain Sciences review 2020",
        "none": "So how special is … 2024",
        "pair": "Popova et al. 2019",
    }


def test_every_reference_has_its_own_label() -> None:
    labels = author_year_labels()
    assert len(set(labels.values())) == len(labels)
    assert labels["zanos2018"] == "Zanos et al. 2018"
    assert {labels[i] for i in ("spravato_pi", "spravato_hcp_safety")} == {"Janssen Pharmaceuticals 2025a", "Janssen Pharmaceuticals 2025b"}


def test_citations_become_links_to_the_reference_list() -> None:
    labels = {"a": "Lodge & Mercier 2015", "b": "Pfizer 2024"}
    text = link_citations("Shown twice [@a; @b], once [@b].", labels)
    assert "[@" not in text
    assert text.count('href="#ref-b"') == 2 and "Lodge &amp; Mercier 2015" in text
    # the [id] a fact box prints: linked where the page lists the reference, plain author-year otherwise
    plain = link_plain_citations("> A fact. [a; b] and [not_an_id]", labels, listed={"a"})
    assert plain == '> A fact. (<a class="citation" href="#ref-a">Lodge &amp; Mercier 2015</a>; Pfizer 2024) and [not_an_id]'


def test_the_link_check_finds_broken_links_missing_anchors_and_outside_loads(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<a href="a.html#top">ok</a> <a href="https://doi.org/10.1/x">a DOI is fine</a>')
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1><img src="data:image/png;base64,AA" alt="x">')
    assert check_site(tmp_path) == []
    (tmp_path / "b.html").write_text(
        '<a href="missing.html">x</a> <a href="a.html#nowhere">y</a> <a href="#ref-z">z</a>'
        '<script src="https://cdn.example/mathjax.js"></script><link rel="stylesheet" href="//fonts.example/f.css">'
        '<img src="../outside.png" alt="o">'
    )
    problems = "\n".join(check_site(tmp_path))
    for expected in ("broken link missing.html", "'nowhere'", "'ref-z'", "loads https://cdn.example/mathjax.js", "//fonts.example", "outside the site"):
        assert expected in problems


def test_binder_links_open_jupyterlab_at_the_page() -> None:
    url = binder_url("notebooks/03_pharmacokinetics.ipynb")
    assert url.startswith("https://mybinder.org/v2/gh/") and url.endswith("/HEAD?urlpath=lab/tree/notebooks/03_pharmacokinetics.ipynb")
    assert re.fullmatch(r"[A-Za-z0-9:/._?=&%-]+", url), "nothing to escape in a launch link"
    assert repository_url().split("/")[-2:] == url.split("/v2/gh/")[1].split("/HEAD")[0].split("/")
    readme = (ROOT / "README.md").read_text()
    start = binder_url(START_PAGE)
    assert f"[![Launch the course on Binder](https://mybinder.org/badge_logo.svg)]({start})" in readme, "the badge opens the start page"
    assert re.findall(r"https://mybinder\.org/v2/[^)\s>]+", readme) == [start, start], "every launch link in the README is the same"


# --------------------------------------------------------------------------
# The build fails on a cell error, output on stderr, or a Sphinx warning
# --------------------------------------------------------------------------


def _notebook(path: Path, *cells: Any) -> Path:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=list(cells), metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}), path)
    return path


@pytest.mark.slow
@pytest.mark.once
@pytest.mark.parametrize(("code", "message"), [("1 / 0", "a cell failed"), ("import sys; print('careful', file=sys.stderr)", "wrote to stderr")])
def test_a_cell_error_or_stderr_output_fails_the_build(tmp_path: Path, code: str, message: str) -> None:
    import nbformat

    from ketamine_course.site import SiteBuildError, execute_lesson

    lesson = _notebook(tmp_path / "lesson.ipynb", nbformat.v4.new_markdown_cell("# A lesson"), nbformat.v4.new_code_cell(code))
    with pytest.raises(SiteBuildError, match=message):
        execute_lesson(lesson)


@pytest.mark.slow
@pytest.mark.once
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")  # Sphinx's notices to MyST, in-process
def test_a_sphinx_warning_fails_the_build(tmp_path: Path) -> None:
    import nbformat

    from ketamine_course.site import SiteBuildError, sphinx_build

    stage_dir = tmp_path / "stage"
    good = nbformat.v4.new_markdown_cell("# Start\n\nSee [unit one](01_one.ipynb) and $k = \\ln 2 / t_{1/2}$.")
    _notebook(stage_dir / "notebooks" / "00_start_here.ipynb", good, nbformat.v4.new_markdown_cell("```{toctree}\n:hidden:\n\n01_one\n```"))
    _notebook(stage_dir / "notebooks" / "01_one.ipynb", nbformat.v4.new_markdown_cell("# One"))
    sphinx_build(stage_dir, tmp_path / "out", tmp_path / "doctrees")  # builds cleanly
    assert "<math" in (tmp_path / "out" / "notebooks" / "00_start_here.html").read_text()
    _notebook(stage_dir / "notebooks" / "01_one.ipynb", nbformat.v4.new_markdown_cell("# One\n\n[back](00_start_herre.ipynb)"))
    with pytest.raises(SiteBuildError, match="Sphinx reported warnings"):
        sphinx_build(stage_dir, tmp_path / "out", tmp_path / "doctrees")


# --------------------------------------------------------------------------
# Quizzes: what must never be published
# --------------------------------------------------------------------------

_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


def _secret_lines() -> set[str]:
    """Lines of the instructor quizzes' solutions and hidden tests that appear in no lesson or student quiz."""
    public: set[str] = set()
    for path in [*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "release").rglob("*.ipynb")]:
        for cell in _cells(path):
            public.update(line.strip() for line in "".join(cell["source"]).splitlines())
    secret: set[str] = set()
    for path in (ROOT / "source").rglob("*.ipynb"):
        for cell in _cells(path):
            for _, region in _REGION.findall("".join(cell["source"])):
                secret.update(line.strip() for line in region.splitlines())
    return {line for line in secret - public if len(line) >= 8}


def _leaks(text: str, secrets: set[str]) -> list[str]:
    markers = [m for m in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END SOLUTION", "END HIDDEN TESTS") if m in text]
    return markers + sorted(line for line in secrets if line in text)


def test_the_leak_check_would_catch_a_published_solution() -> None:
    secrets = _secret_lines()
    assert len(secrets) > 40, "every quiz has solutions and hidden tests to guard"
    assert 'answer_q8 = "B"' in secrets  # a multiple-choice key
    assert _leaks("answer_q8 = None\nanswer_q8 = \"B\"\n", secrets) == ['answer_q8 = "B"']
    assert _leaks("### BEGIN HIDDEN TESTS", secrets) == ["BEGIN HIDDEN TESTS"]


# --------------------------------------------------------------------------
# The built site (one build per session)
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site() -> Path:
    """``./course site`` as the README gives it; its time and size are printed with the test output."""
    started = time.perf_counter()
    result = subprocess.run([str(ROOT / "course"), "site"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"./course site failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    size_mb = sum(p.stat().st_size for p in SITE.rglob("*") if p.is_file()) / 1e6
    print(f"\n./course site: {time.perf_counter() - started:.0f} s, {size_mb:.1f} MB")
    return SITE


@pytest.mark.slow
def test_the_site_has_an_index_every_lesson_and_every_quiz(site: Path) -> None:
    assert 'url=notebooks/00_start_here.html"' in (site / "index.html").read_text()
    for repo_path in LESSONS + QUIZZES:
        assert (site / _html(repo_path)).is_file(), repo_path
    assert check_site(site) == []
    assert not list(site.rglob("*.ipynb")), "the site publishes pages, not notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("repo_path", LESSONS, ids=lambda p: Path(p).stem)
def test_lesson_page_shows_outputs_figures_citations_and_references(site: Path, repo_path: str) -> None:
    page = (site / _html(repo_path)).read_text(encoding="utf-8")
    text = _text(page)
    assert _title(repo_path) in text
    assert "[@" not in text
    keys = [k for group in re.findall(r"\[([a-z0-9_]+(?:; [a-z0-9_]+)*)\]", text) for k in group.split("; ") if k in author_year_labels()]
    assert not keys, f"reference ids shown as raw keys: {keys}"
    assert 'class="output traceback"' not in page and "Traceback (most recent call last)" not in text
    assert "widget-view+json" not in page and "require.min.js" not in page and "embed-amd" not in page
    executed = _cells(ROOT / "build" / "site-src" / repo_path)  # as ./course site executed it
    assert page.count('class="cell_output') == sum(1 for c in executed if c.get("outputs")), "every cell's output is shown"
    for img in re.findall(r"<img [^>]*>", page):
        if "data:image/png" in img:
            assert re.search(r'alt="[^"]{10,}"', img), img[:120]
    labels = author_year_labels()
    ids = cited_ids(ROOT / repo_path)
    for ref_id in ids:
        assert f'href="#ref-{ref_id}"' in page, f"{ref_id} is not linked"
        assert f'<li id="ref-{ref_id}">' in page, f"{ref_id} is not in the reference list"
        assert labels[ref_id].replace("&", "&amp;") in page
    assert f'href="{binder_url(repo_path)}"' in page
    markdown = "\n".join("".join(c["source"]) for c in _cells(ROOT / repo_path) if c["cell_type"] == "markdown")
    if "$" in markdown:
        assert "<math" in page and "\\frac" not in text and "\\text" not in text, "maths rendered at build time"


@pytest.mark.slow
def test_widgets_show_their_still_picture_and_say_what_is_interactive(site: Path) -> None:
    for lesson, count in (("notebooks/02_nmda_mechanism.ipynb", 1), ("notebooks/03_pharmacokinetics.ipynb", 4)):
        page = (site / _html(lesson)).read_text(encoding="utf-8")
        assert page.count("A still picture of an interactive widget. Run this notebook in JupyterLab to") == count, lesson
    pk = (site / _html("notebooks/03_pharmacokinetics.ipynb")).read_text(encoding="utf-8")
    assert "Dose:</b> 35 mg" in pk and "move the dose, half-life, volume and time sliders" in pk
    # the virtual population and the plasma-occupancy timeline, each as its still picture with its numbers
    assert 'alt="Many thin grey curves, one per simulated person' in pk and "1000 people: median peak" in pk
    assert 'alt="Two panels sharing a time axis' in pk and "Racemic occupancy falls below 20% at" in pk


@pytest.mark.slow
@pytest.mark.parametrize("repo_path", QUIZZES, ids=lambda p: Path(p).stem)
def test_quiz_page_is_the_student_version_and_never_a_solution(site: Path, repo_path: str) -> None:
    page = (site / _html(repo_path)).read_text(encoding="utf-8")
    text = _text(page)
    assert _title(repo_path) in text
    for cell in _cells(ROOT / repo_path):
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                assert line.strip() in text, f"student cell line missing: {line}"
    assert "raise NotImplementedError()" in text
    assert 'class="cell_output' not in page, "quizzes are shown unexecuted"


@pytest.mark.slow
def test_no_page_of_the_site_publishes_a_solution_or_hidden_test(site: Path) -> None:
    secrets = _secret_lines()
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".txt", ".json", ".ipynb"):
            assert not _leaks(path.read_text(encoding="utf-8", errors="replace"), secrets), path


# --------------------------------------------------------------------------
# In Chromium, from disk, with nothing fetched from outside build/site/
# --------------------------------------------------------------------------


def _own_files(site: Path) -> Callable[[str], bool]:
    """Addresses a page of the site may request: its own files, and data: URIs."""
    own = site.resolve().as_uri() + "/"

    def allowed(url: str) -> bool:
        return url.startswith(own) or url.split(":", 1)[0] in ("data", "about", "blob")

    return allowed


def test_pages_may_request_only_the_sites_own_files(tmp_path: Path) -> None:
    allowed = _own_files(tmp_path / "site")
    assert allowed((tmp_path / "site" / "_static" / "a.css").as_uri()) and allowed("data:image/png;base64,AA")
    assert not allowed((tmp_path / "elsewhere.css").as_uri())
    assert not allowed((tmp_path / "site-other" / "a.css").as_uri())
    assert not allowed("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js")


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[tuple[Any, Any]]:
    from browser_helpers import browser_missing, open_browser

    missing = browser_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {missing}")
    if missing:
        pytest.skip(missing)
    with open_browser(viewport=(1300, 900), allowed=_own_files(site)) as (page, watch):
        page.set_default_timeout(30_000)
        yield page, watch


_PAGE_STATE = """() => {
    const images = [...document.images];
    const maths = [...document.querySelectorAll('article math')];
    return {
        h1: document.querySelector('article h1')?.textContent.replace(/[#¶]/g, '').trim() ?? null,
        text: document.body.innerText,
        broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80)),
        noAlt: images.filter(i => i.closest('article') && !(i.alt || '').trim()).map(i => i.src.slice(0, 80)),
        figures: images.filter(i => i.src.startsWith('data:image/png')).length,
        maths: maths.length,
        flatMaths: maths.filter(m => m.getBoundingClientRect().width === 0).length,
        binder: document.querySelector('a.course-binder-link')?.href ?? null,
        next: document.querySelector('a.right-next')?.getAttribute('href') ?? null,
    };
}"""


@pytest.mark.slow
def test_every_page_renders_offline_in_chromium(site: Path, browser: tuple[Any, Any]) -> None:
    from playwright.sync_api import expect

    page, watch = browser
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    assert len(pages) >= len(READING_ORDER) + 1
    for path in pages:
        page.goto(path.as_uri())
        if path == site / "index.html":  # the site's root sends the reader to the start page
            page.wait_for_url(re.compile(r"/notebooks/00_start_here\.html$"))
        page.wait_for_load_state("load")
        state = page.evaluate(_PAGE_STATE)
        where = path.relative_to(site)
        assert not state["broken"], f"{where}: images that did not load: {state['broken']}"
        assert not state["noAlt"], f"{where}: images without alt text: {state['noAlt']}"
        assert "[@" not in state["text"], f"{where}: a raw citation key"
        assert state["flatMaths"] == 0, f"{where}: maths not laid out"
        assert not watch.problems(), f"{where}:\n" + "\n".join(watch.problems())
    # The reading order: start page -> unit 1 -> quiz 1 -> unit 2 ...; each page's title, figures, maths and Binder link.
    for position, repo_path in enumerate(READING_ORDER):
        page.goto((site / _html(repo_path)).as_uri())
        page.wait_for_load_state("load")
        state = page.evaluate(_PAGE_STATE)
        assert state["h1"] == _title(repo_path), repo_path
        assert state["binder"] == binder_url(repo_path), repo_path
        if repo_path in LESSONS[2:]:
            assert state["figures"] >= 1, f"{repo_path}: no figure"
        if repo_path == "notebooks/03_pharmacokinetics.ipynb":
            assert state["maths"] >= 10
        if position + 1 < len(READING_ORDER):
            following = (site / _html(READING_ORDER[position + 1])).resolve()
            assert state["next"] and (site / Path(_html(repo_path)).parent / state["next"]).resolve() == following, repo_path
        if repo_path in (START_PAGE, "notebooks/03_pharmacokinetics.ipynb"):
            page.screenshot(path=str(SCREENSHOTS / f"{Path(repo_path).stem}.png"), full_page=True)
    # search works from disk: results, and nothing refused
    page.goto((site / "search.html").as_uri() + "?q=bioavailability")
    expect(page.locator("#search-results")).to_contain_text("Unit 3. Pharmacokinetics", timeout=20_000)
    assert not watch.problems(), "\n".join(watch.problems())
    # a citation link lands on its entry in the reference list
    page.goto((site / _html("notebooks/03_pharmacokinetics.ipynb")).as_uri())
    link = page.locator('article a.citation[href="#ref-kamp2020"]').first
    link.click()
    page.wait_for_function("() => location.hash === '#ref-kamp2020'")
    assert page.locator("#ref-kamp2020").is_visible()
    assert "Kamp J" in page.locator("#ref-kamp2020").inner_text()
    assert not watch.problems(), "\n".join(watch.problems())
