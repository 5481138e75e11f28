"""The lessons: structure, citations, numbers traced to data/, and executed output."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ketamine_course.data import load_table
from ketamine_course.lesson import CITATION, CITATION_LINKS, GENERATED, UNITS, cited_ids, render, sync_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _markdown(path: Path, generated: bool = True) -> str:
    """A notebook's Markdown; without the cells generated from data/ when ``generated`` is False (the authored prose)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown" and (generated or GENERATED not in c["metadata"])
    )


def _generated(path: Path) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [c["metadata"][GENERATED]["generated"] for c in nb["cells"] if c["cell_type"] == "markdown" and GENERATED in c["metadata"]]


# --------------------------------------------------------------------------
# Readable as opened: what a learner reads first is Markdown generated from data/, in sync with it
# --------------------------------------------------------------------------


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_generated_text_is_in_sync_with_data(path: Path) -> None:
    assert not sync_notebook(path, write=False), f"{path.name} is out of date with data/: run python -m ketamine_course.lesson notebooks/*.ipynb"


def test_a_change_in_data_puts_a_lesson_out_of_sync(data_copy: Path, tmp_path: Path) -> None:
    facts = data_copy / "facts.csv"
    facts.write_text(facts.read_text(encoding="utf-8").replace("coincidence detection", "coincidence-detection", 1), encoding="utf-8")
    lesson = tmp_path / "02.ipynb"
    lesson.write_bytes((NOTEBOOKS / "02_nmda_mechanism.ipynb").read_bytes())
    assert sync_notebook(lesson, write=False)


def test_the_start_page_shows_disclaimer_and_course_map_before_anything_runs() -> None:
    kinds = [next(iter(spec)) for spec in _generated(NOTEBOOKS / "00_start_here.ipynb")]
    assert kinds[:2] == ["disclaimer", "course_map"]
    text = _markdown(NOTEBOOKS / "00_start_here.ipynb")
    assert render({"course_map": True}) in text
    for unit in UNITS:
        assert f"[{unit.title}]({unit.notebook})" in text and f"[{unit.quiz}]({unit.quiz_path})" in text


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_no_fact_table_or_reference_list_is_left_to_a_code_cell(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert not re.search(r"\b(fact|table|references|course_map)\(|print\(DISCLAIMER\)", source), source[:80]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_citations_read_as_author_year_links(path: Path) -> None:
    text = _markdown(path)
    assert not CITATION.search(text), "a [@id] citation was not rendered"
    for match in CITATION_LINKS.finditer(text):
        assert re.search(r"\[[^\]]*\b(19|20)\d\d\]\(", match.group(0)), match.group(0)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_no_text_is_cut_off(path: Path) -> None:
    for line in _markdown(path).splitlines():
        assert "…" not in line and not re.search(r"\.\.\.\s*(\||$)", line), line[:120]


def test_the_course_has_a_start_page_and_five_units() -> None:
    assert [p.name for p in LESSONS] == ["00_start_here.ipynb"] + [u.notebook for u in UNITS]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_cited_reference_exists(path: Path) -> None:
    known = {r["id"] for r in load_table("references")}
    ids = cited_ids(path)
    assert ids, f"{path.name} cites nothing"
    assert not set(ids) - known, f"{path.name} cites unknown ids {sorted(set(ids) - known)}"
    # a malformed citation (e.g. [@Zanos2018] or [zanos2018]) would silently not render
    text = _markdown(path)
    assert not re.findall(r"\[@[^\]]*[A-Z ][^\]]*\]", CITATION.sub("", text)), "malformed [@...] citation"
    assert not re.findall(r'"@[^"]*[A-Z ][^"]*"\)', text), "malformed rendered citation"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.notebook)
def test_each_unit_has_objectives_time_exercises_key_points_references_and_quiz_link(unit) -> None:
    path = NOTEBOOKS / unit.notebook
    text = _markdown(path)
    assert f"**Time:** {unit.minutes} min" in text, "the header's time must match the course map"
    for heading in ("**Questions**", "**Objectives.**", "## Practice", "## Key points", "## References"):
        assert heading in text, heading
    assert text.index("**Objectives.**") < text.index("## Key points") < text.index("## References")
    assert "<details><summary>Show answer</summary>" in text
    assert text.count(f"]({unit.quiz_path})") >= 2, "link the quiz at the top and at the end"
    assert {"references": True} in _generated(path)


def test_quiz_links_point_at_existing_release_notebooks() -> None:
    for unit in UNITS:
        assert (NOTEBOOKS / unit.quiz_path).resolve().is_file(), unit.quiz_path


# --------------------------------------------------------------------------
# Numbers in prose must come from data/ (so a retyped or misremembered value fails).
# --------------------------------------------------------------------------

_UNIT_NUMBER = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:–|-|to)?\s*(\d+(?:\.\d+)?)?\s*(%|ng/mL|mg/kg|µM|mg/mL|mmHg|h\b|min\b|L/kg|mg\b)"
)
_YEAR = re.compile(r"(?<![\d.])(19[5-9]\d|20[0-2]\d)(?![\d.])")


def _data_numbers() -> set[str]:
    """Every number in the fact tables (not references.csv, whose page numbers and DOIs would match anything)."""
    numbers: set[str] = set()
    for table in (ROOT / "data").glob("*.csv"):
        if table.name == "references.csv":
            continue
        for row in csv.reader(table.open(encoding="utf-8")):
            for cell in row:
                for token in re.findall(r"\d+(?:\.\d+)?", cell):
                    numbers.add(f"{float(token):g}")
    return numbers


def _reference_years() -> set[str]:
    return {str(r["year"]) for r in load_table("references")}


# Numbers a lesson may state that are not facts about ketamine: unit conversions, exercise inputs and worked results.
_WORKED = {"1000", "82", "41", "4.1", "61.5", "140", "17.5", "175", "12.5", "12:00", "10:00", "60"}


def _numbers_not_in_data(markdown: str) -> set[str]:
    known = _data_numbers() | _WORKED
    text = re.sub(r"\$[^$]*\$", " ", markdown)  # equations
    text = re.sub(r"`[^`]*`", " ", text)  # code
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    missing = set()
    for match in _UNIT_NUMBER.finditer(text):
        for number in filter(None, match.group(1, 2)):
            if f"{float(number):g}" not in known:
                missing.add(match.group(0))
    missing.update(year for year in _YEAR.findall(text) if year not in known | _reference_years())
    return missing


def test_the_number_check_catches_a_misquoted_value() -> None:
    assert _numbers_not_in_data("The infusion peaks near 185 ng/mL, first used in 2000.") == set()
    assert _numbers_not_in_data("Response was 63-79% in 1998, with 2.2 mg/kg.") == {"63-79%", "1998", "2.2 mg/kg"}


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_numbers_in_prose_are_found_in_the_data_tables(path: Path) -> None:
    missing = _numbers_not_in_data(_markdown(path, generated=False))  # generated cells come from data/ itself
    assert not missing, f"{path.name}: numbers in prose not found in data/: {sorted(missing)}"


# --------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_executes_cleanly_with_static_widget_fallbacks(path: Path, record_property) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    elapsed = time.perf_counter() - start
    record_property("seconds", round(elapsed, 2))
    outputs = [(c, o) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for _, o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    for cell, output in outputs:
        if output.output_type == "stream" and output.name == "stderr":
            pytest.fail(f"stderr output in {path.name}: {output.text[:300]}")
        data = output.get("data", {})
        # what JupyterLab shows: the richest text form (a widget's text/plain repr is never shown, and ipywidgets cuts it)
        shown = output.get("text", "") + next((data[k] for k in ("text/html", "text/markdown", "text/plain") if k in data), "")
        assert "…" not in shown and not re.search(r"\.\.\.\s*(</td>|$)", shown, re.MULTILINE), f"cut-off output in {path.name}: {cell.source[:80]}"
        if "application/vnd.jupyter.widget-view+json" in data:
            # an executed notebook or HTML export still shows the widget's figure or result
            assert "text/html" in data, cell.source
        if "image/png" in data and "text/html" not in data:
            pytest.fail(f"a figure without alt text in {path.name}: {cell.source[:80]}")
        if "text/html" in data and "<img" in data["text/html"]:
            assert re.search(r'<img [^>]*alt="[^"]{10,}"', data["text/html"]), "figure without alt text"
    # how long a lesson takes is ./course bench's figure ("execute lesson ..."), recorded here only: no wall-clock limit
