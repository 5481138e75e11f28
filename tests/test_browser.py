"""The course as a learner meets it: JupyterLab in Debian's Chromium, driven by Playwright.

Each test opens the course with the README's own command, ``./course open
--no-browser``, in a fresh clone (see ``browser_helpers.py``), opens a notebook in a fresh workspace, and acts as a
learner would: menus, keyboard, typing. Every wait is on real state (the
kernel status, ``aria-valuenow``, exact texts, an image's ``src``), never a
fixed sleep. Throughout, a console error or any request that leaves 127.0.0.1
fails the test; a failing test leaves a screenshot in ``reports/browser/``.

Without Chromium these tests skip with the reason; under ``CI`` a missing
browser is a failure (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from browser_helpers import (
    CURRENT_NOTEBOOK,
    ROOT,
    JupyterLab,
    browser_missing,
    default_dose,
    dose_line,
    git_status,
    open_browser,
    open_notebook,
    run_all,
    volume_line,
)
from grading_helpers import question_points, solutions, tree_digest
from ketamine_course import DISCLAIMER, dosing, pk
from ketamine_course.lesson import UNITS, cited_ids
from ketamine_course.quiz import SLIPS
from ketamine_course.widgets import format_number

pytestmark = [pytest.mark.slow, pytest.mark.once]  # once: CI runs these on the system Python only

SCREENSHOTS = ROOT / "reports" / "browser"
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    missing = browser_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {missing}")
    if missing:
        pytest.skip(missing)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterLab]:
    with JupyterLab(tmp_path) as server:
        yield server


@pytest.fixture
def page(lab: JupyterLab, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with open_browser() as (browser_page, watch):
        browser_page.set_default_timeout(60_000)
        yield browser_page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / f"{request.node.name}.png"
            browser_page.screenshot(path=str(shot), full_page=False)
            print(f"screenshot: {shot}\nJupyterLab log:\n{lab.log_tail()}")
        assert not watch.problems(), "\n".join(watch.problems())


def _no_error_outputs(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)


# --------------------------------------------------------------------------
# The start page
# --------------------------------------------------------------------------


def test_start_page_is_readable_before_anything_runs_and_its_map_opens_a_lesson(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    open_notebook(page, lab, "notebooks/00_start_here.ipynb")
    panel = page.locator(CURRENT_NOTEBOOK)
    expect(panel.locator(".jp-MarkdownOutput h1").first).to_have_text(re.compile("Ketamine: an interactive pharmacology course"))
    # As opened, with nothing run: the disclaimer and the course map are there to read.
    expect(panel.locator(".jp-MarkdownOutput blockquote").first).to_contain_text(DISCLAIMER.split(". ", 1)[1])
    course_map = panel.locator(".jp-MarkdownOutput table").filter(has=page.get_by_role("columnheader", name="Lesson"))
    expect(course_map).to_have_count(1)
    rows = course_map.locator("tbody tr")
    expect(rows).to_have_count(len(UNITS) + 1)  # one row per unit, then the total
    for row, unit in zip(rows.all()[: len(UNITS)], UNITS, strict=True):  # the last row is the total
        expect(row.locator("td").nth(0)).to_have_text(str(unit.number))
        expect(row.get_by_role("link", name=unit.title, exact=True)).to_be_visible()
        expect(row.locator("td").nth(2)).to_have_text(f"{unit.minutes} min")
        expect(row.get_by_role("link", name=unit.quiz, exact=True)).to_be_visible()
    total_min = sum(u.minutes for u in UNITS)
    expect(rows.last).to_contain_text(f"{total_min // 60} h {total_min % 60:02d} min")
    expect(panel.locator(".jp-CodeCell .jp-InputPrompt").first).to_have_text("[ ]:")  # nothing has run

    # Run All still works and shows nothing amiss.
    run_all(page)
    _no_error_outputs(page)

    # The map is how a learner moves on: its link opens the lesson in JupyterLab.
    pk_unit = next(u for u in UNITS if u.notebook.startswith("03_"))
    course_map.get_by_role("link", name=pk_unit.title, exact=True).click()
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")).to_have_text(pk_unit.notebook)
    expect(page.locator(f"{CURRENT_NOTEBOOK} .jp-MarkdownOutput h1").first).to_contain_text("Pharmacokinetics")


# --------------------------------------------------------------------------
# The pharmacokinetics lesson: dose calculator and decay explorer
# --------------------------------------------------------------------------


def test_pharmacokinetics_lesson_widgets_respond(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    lessons_before = tree_digest(ROOT / "notebooks")
    open_notebook(page, lab, "notebooks/03_pharmacokinetics.ipynb")
    run_all(page)
    _no_error_outputs(page)

    calculator = page.locator(".t-dose-calculator")
    expect(calculator).to_be_visible()
    expect(calculator.locator(".t-disclaimer")).to_contain_text(dosing.DISCLAIMER.split(";")[0])
    decay_plot = page.locator(".t-decay-plot")
    expect(decay_plot).to_be_visible()
    expect(decay_plot).to_have_attribute("src", re.compile(r"^blob:|^data:image/png"))
    assert decay_plot.evaluate("img => img.complete && img.naturalWidth > 0"), "the decay plot image did not load"

    # Weight slider, by keyboard: two steps right from 70 kg.
    handle = page.locator(".t-weight [role=slider]")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^70(\.0+)?$"))
    expect(calculator.locator(".t-dose-mg")).to_have_text(dose_line(70))
    handle.focus()
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^72(\.0+)?$"))
    expect(calculator.locator(".t-dose-mg")).to_have_text(dose_line(72))
    expect(calculator.locator(".t-volume-ml")).to_have_text(volume_line(72))
    expect(calculator.locator(".t-weight-text input")).to_have_value("72")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    calculator.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "pharmacokinetics-dose-calculator.png"))

    # Half-life slider: the plot is redrawn and the readout follows.
    half_life = page.locator(".t-half-life [role=slider]")
    start_h = float(half_life.get_attribute("aria-valuenow") or "nan")
    old_src = decay_plot.get_attribute("src")
    half_life.focus()
    half_life.press("ArrowRight")
    new_h = round(start_h + 0.1, 1)
    expect(half_life).to_have_attribute("aria-valuenow", re.compile(rf"^{new_h}0*$"))
    expect(decay_plot).not_to_have_attribute("src", old_src or "")
    time_h = float(page.locator(".t-time [role=slider]").get_attribute("aria-valuenow") or "nan")
    remaining_percent = 100 * float(pk.fraction_remaining(time_h / new_h))
    expect(page.locator(".t-fraction-text")).to_contain_text(
        f"({format_number(time_h / new_h)} half-lives): {format_number(remaining_percent, 1)}% remains"
    )

    # An out-of-range weight: the limit is explained, nothing is calculated, and the last good weight is kept.
    too_heavy_kg = 400
    with pytest.raises(dosing.DoseInputError) as refused:
        default_dose(too_heavy_kg)
    typed = calculator.locator(".t-weight-text input")
    typed.fill(str(too_heavy_kg))
    typed.press("Enter")
    error = calculator.locator(".t-dose-result .course-error")
    expect(error).to_have_text(f"Not calculated. {refused.value}")
    expect(error).to_have_attribute("role", "alert")
    expect(calculator.locator(".t-dose-mg")).to_have_count(0)
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^72(\.0+)?$"))
    # ...and a valid weight brings the result back.
    typed.fill("80")
    typed.press("Enter")
    expect(calculator.locator(".t-dose-mg")).to_have_text(dose_line(80))
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^80(\.0+)?$"))

    # Autosave and checkpoints went to the temporary copy, never into the repository.
    page.locator("#jp-menu-panel").get_by_role("menuitem", name="File", exact=True).click()
    page.locator('.lm-Menu [data-command="docmanager:save"]').click()
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"))
    saved = nbformat.read(lab.course / "notebooks" / "03_pharmacokinetics.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in saved.cells), "the save went somewhere else"
    assert tree_digest(ROOT / "notebooks") == lessons_before
    assert git_status(lab.clone) == [], "saving a lesson changed the course's tracked files"

    # Reopened later, the lesson shows its last still pictures, not a widget error.
    assert saved.metadata.get("widgets"), "the widget state was not saved with the lesson"
    open_notebook(page, lab, "notebooks/03_pharmacokinetics.ipynb")
    reopened = page.locator(CURRENT_NOTEBOOK)
    expect(reopened.locator(".t-decay-plot")).to_be_visible()
    assert reopened.locator(".t-decay-plot").evaluate("img => img.decode().then(() => img.naturalWidth > 0)")
    expect(reopened.locator(".t-dose-mg")).to_have_text(dose_line(80))
    expect(reopened.get_by_text(re.compile("Error displaying widget|model not found"))).to_have_count(0)


def test_population_and_timeline_widgets_respond(lab: JupyterLab, page: Any) -> None:
    """The virtual population and the plasma-occupancy timeline, driven by keyboard; what they show is computed here independently."""
    import numpy as np
    from playwright.sync_api import expect

    from ketamine_course import population, receptor

    open_notebook(page, lab, "notebooks/03_pharmacokinetics.ipynb")
    run_all(page)
    _no_error_outputs(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    crowd = page.locator(".t-population")
    plot = crowd.locator(".t-pop-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.decode().then(() => img.naturalWidth > 0)")
    expect(crowd.locator(".t-pop-peak")).to_contain_text("1000 people: median peak")
    crowd.screenshot(path=str(SCREENSHOTS / "pharmacokinetics-population-1000.png"))

    # Home on the people slider: the first 10 people of the seeded population, redrawn.
    people_handle = crowd.locator(".t-people [role=slider]")
    old_src = plot.get_attribute("src")
    people_handle.focus()
    people_handle.press("Home")
    expect(people_handle).to_have_attribute("aria-valuenow", re.compile(r"^10(\.0+)?$"))
    peaks = population.peak_ng_per_ml(population.sample_population(10), 0.5, 40 / 60)
    low, mid, high = np.percentile(peaks, (5, 50, 95))
    expect(crowd.locator(".t-pop-peak")).to_have_text(
        f"10 people: median peak {format_number(mid, 0)} ng/mL, 90% of peaks between {format_number(low, 0)} and {format_number(high, 0)} ng/mL."
    )
    expect(plot).not_to_have_attribute("src", old_src or "")
    crowd.screenshot(path=str(SCREENSHOTS / "pharmacokinetics-population-10.png"))

    # The timeline: one step up on the occupancy threshold moves the crossing time.
    timeline = page.locator(".t-timeline")
    threshold = timeline.locator(".t-threshold [role=slider]")
    start = float(threshold.get_attribute("aria-valuenow") or "nan")
    old_src = timeline.locator(".t-timeline-plot").get_attribute("src")
    threshold.focus()
    threshold.press("ArrowRight")
    new_percent = start + 1
    time_h = np.linspace(0, 8, 481)
    model = pk.compartment_model("clements_2cmt", weight_kg=70)
    plasma = pk.simulate(model, [pk.Dose(0, 0.5 * 70, duration_h=40 / 60)], time_h).conc_ng_per_ml
    below = receptor.time_falls_below_h(time_h, receptor.occupancy_from_ng_per_ml(plasma, "racemic"), new_percent / 100)
    expect(timeline.locator(".t-tl-below")).to_have_text(f"Racemic occupancy falls below {format_number(new_percent, 0)}% at {format_number(below, 2)} h.")
    expect(timeline.locator(".t-timeline-plot")).not_to_have_attribute("src", old_src or "")
    timeline.screenshot(path=str(SCREENSHOTS / "pharmacokinetics-timeline.png"))


# --------------------------------------------------------------------------
# Every other lesson: runs clean, every widget and figure shows, with a text alternative
# --------------------------------------------------------------------------

OTHER_LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("0[1-9]_*.ipynb") if not p.name.startswith("03_"))


@pytest.mark.parametrize("lesson", OTHER_LESSONS)
def test_lesson_runs_in_jupyterlab_with_every_figure_shown(lab: JupyterLab, page: Any, lesson: str) -> None:
    from playwright.sync_api import expect

    open_notebook(page, lab, f"notebooks/{lesson}")
    run_all(page)
    _no_error_outputs(page)
    panel = page.locator(CURRENT_NOTEBOOK)
    outputs = panel.locator(".jp-OutputArea-output")
    expect(outputs.filter(has_text=re.compile("Error displaying widget|Loading widget"))).to_have_count(0)
    cited = cited_ids(ROOT / "notebooks" / lesson)
    expect(panel.locator(".jp-MarkdownOutput ol").last.locator("li")).to_have_count(len(cited))  # the reference list
    figures = panel.locator(".jp-OutputArea-output img")
    expect(figures.first).to_be_visible()
    for figure in figures.all():
        figure.scroll_into_view_if_needed()
        figure.evaluate("img => img.decode()")  # rejects if the image cannot be shown
        text = figure.get_attribute("alt") or figure.evaluate(
            "img => img.classList.contains('t-plot') ? img.nextElementSibling.querySelector('.t-plot-alt').textContent : ''"
        )
        assert len(text) >= 20, f"a figure in {lesson} has no text alternative"


# --------------------------------------------------------------------------
# A quiz, validated from JupyterLab
# --------------------------------------------------------------------------

QUIZ = "quiz03_pharmacokinetics"


def _validate(page: Any) -> Any:
    """Press nbgrader's Validate button and return the results dialog."""
    page.locator(f"{CURRENT_NOTEBOOK} .validate-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Validation Results").wait_for(timeout=120_000)
    return dialog


def _answer(page: Any, cell: Any, code: str) -> None:
    """Replace an answer cell's text as a learner would: click in it, select all, type the answer."""
    editor = cell.locator(".jp-InputArea-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)  # like a paste: no auto-indent or bracket closing to fight
    page.keyboard.press("Escape")


def test_quiz_answered_correctly_passes_nbgrader_validate(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    release_before = tree_digest(ROOT / "release")
    open_notebook(page, lab, f"release/{QUIZ}/{QUIZ}.ipynb")
    panel = page.locator(CURRENT_NOTEBOOK)

    # Handed in blank, Validate says so.
    dialog = _validate(page)
    expect(dialog.locator(".validation-failed")).to_be_visible()
    dialog.get_by_role("button", name="Ok").click()
    expect(dialog).to_have_count(0)

    answers = solutions(QUIZ)
    release = nbformat.read(lab.course / "release" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    position = {c.metadata.get("nbgrader", {}).get("grade_id", c.id): i for i, c in enumerate(release.cells)}
    cells = panel.locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(len(release.cells))

    # A classic slip (a pump rate per minute), checked as a learner does: the visible check names it, without a traceback.
    _answer(page, cells.nth(position["q3_answer"]), "answer_q3 = 0.5 * 143 / 2.20462262185 / 10 / 40")
    cells.nth(position["setup"]).locator(".jp-InputPrompt").click()
    for _ in range(position["setup"], position["q3_test"] + 1):
        page.keyboard.press("Shift+Enter")
    feedback = cells.nth(position["q3_test"]).locator(".jp-OutputArea-output")
    expect(feedback).to_have_text(f"✗ q3: {SLIPS['per_minute']}")
    expect(feedback).not_to_contain_text("Traceback")

    # Answer every question with the instructor's solution, typed into the student version.
    unanswered = panel.locator(".jp-CodeCell .jp-InputArea").filter(has_text="raise NotImplementedError()")  # outputs may quote it
    expect(unanswered).to_have_count(len(answers) - 1)
    for grade_id, code in answers.items():
        cell = cells.nth(position[grade_id])
        _answer(page, cell, code)
        expect(cell.locator(".cm-content")).to_have_text(code.replace("\n", ""), use_inner_text=False)
    expect(unanswered).to_have_count(0)

    # The visible checks, run as a learner would, all pass.
    run_all(page)
    _no_error_outputs(page)
    expect(panel.locator(".jp-OutputArea-output").filter(has_text=re.compile(r"^q\d+, form checked: "))).to_have_count(len(answers))

    dialog = _validate(page)
    expect(dialog.locator(".validation-success")).to_have_text("Success! Your notebook passes all the tests.")
    dialog.get_by_role("button", name="Ok").click()
    # Validate saved the notebook first: the learner's answers are on disk in the course copy.
    saved = nbformat.read(lab.course / "release" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    assert {c.metadata["nbgrader"]["grade_id"]: c.source for c in saved.cells if c.metadata.get("nbgrader", {}).get("solution")} == answers
    assert tree_digest(ROOT / "release") == release_before, "the repository's student version was written to"
    assert git_status(lab.clone) == [], "taking a quiz changed the course's tracked files"


# --------------------------------------------------------------------------
# The watch itself: it must be able to fail
# --------------------------------------------------------------------------


def test_the_watch_records_console_errors_and_requests_off_this_machine() -> None:
    with open_browser() as (page, watch):
        page.goto("about:blank")
        page.evaluate("() => console.error('a deliberate error')")
        page.evaluate("() => fetch('http://192.0.2.1/feed.xml').catch(() => null)")  # TEST-NET-1: never routable
        page.evaluate("() => fetch('http://127.0.0.1:9/').catch(() => null)")  # local: allowed, not recorded
        page.wait_for_function("() => true")
    assert any("a deliberate error" in m for m in watch.console_errors)
    assert watch.outside_requests == ["http://192.0.2.1/feed.xml"]
    assert len(watch.problems()) == len(watch.console_errors) + 1


# --------------------------------------------------------------------------
# The whole journey, from the address ./course open printed
# --------------------------------------------------------------------------

TAB_LABEL = "#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel"
INSTRUCTOR_TOOLS = re.compile(r"Create Assignment|Formgrader|Course List|Assignment List|Manage Assignments")


def _run_cells(page: Any, cells: Any, first: int, last: int) -> None:
    """Select cell ``first`` and press Shift+Enter through cell ``last``, as a learner runs cells one by one."""
    cells.nth(first).locator(".jp-InputPrompt").click()
    for _ in range(first, last + 1):
        page.keyboard.press("Shift+Enter")


def test_the_learners_journey_from_the_printed_address_to_a_checked_quiz(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    # The address ./course open --no-browser printed opens the start page, in the learner's view.
    assert lab.printed_url.startswith(f"http://127.0.0.1:{lab.port}/lab/tree/notebooks/00_start_here.ipynb?token=")
    page.goto(lab.printed_url)
    expect(page.locator(TAB_LABEL)).to_have_text("00_start_here.ipynb")
    page.locator("#jp-main-statusbar").get_by_text("Python 3 (ipykernel) | Idle", exact=True).wait_for()
    expect(page.locator("#jp-mainmenu-nbgrader")).to_have_count(0)
    expect(page.locator("#jp-menu-panel").get_by_role("menuitem", name="Nbgrader")).to_have_count(0)
    expect(page.get_by_text(INSTRUCTOR_TOOLS)).to_have_count(0)
    expect(page.locator("[title*='Create Assignment'], [title*='Assignments'], [title*='Formgrader']")).to_have_count(0)

    # The course map, readable as opened: a lesson link and a quiz link both open their notebooks from the learner's folder.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "journey-start-page-as-opened.png"))
    course_map = page.locator(f"{CURRENT_NOTEBOOK} .jp-MarkdownOutput table").filter(has=page.get_by_role("columnheader", name="Lesson"))
    mechanism = next(u for u in UNITS if u.notebook.startswith("02_"))
    course_map.get_by_role("link", name=mechanism.title, exact=True).click()
    expect(page.locator(TAB_LABEL)).to_have_text(mechanism.notebook)
    expect(page.locator(f"{CURRENT_NOTEBOOK} .jp-MarkdownOutput h1").first).to_contain_text("NMDA")
    page.locator("#jp-main-dock-panel .lm-TabBar-tab").filter(has_text="00_start_here.ipynb").click()
    expect(page.locator(TAB_LABEL)).to_have_text("00_start_here.ipynb")
    pk_unit = next(u for u in UNITS if u.quiz == QUIZ)
    course_map.get_by_role("link", name=pk_unit.quiz, exact=True).click()
    expect(page.locator(TAB_LABEL)).to_have_text(f"{QUIZ}.ipynb")
    page.locator("#jp-main-statusbar").get_by_text("Python 3 (ipykernel) | Idle", exact=True).wait_for()

    # Slips first: each visible check names the slip that happened, without a traceback.
    panel = page.locator(CURRENT_NOTEBOOK)
    release = nbformat.read(lab.course / "release" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    position = {c.metadata.get("nbgrader", {}).get("grade_id", c.id): i for i, c in enumerate(release.cells)}
    cells = panel.locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(len(release.cells))
    slips = {
        "q1": ("answer_q1 = -35", "✗ q1: -35 mg is not plausible: it must be positive"),
        "q2": ('answer_q2 = "4.1 mL"', re.compile(r"^✗ q2: the answer must be a number in mL \(no units or text, just the number\)")),
        "q3": ("answer_q3 = 0.5 * 143 / 2.20462262185 / 10 / 40", f"✗ q3: {SLIPS['per_minute']}"),
        "q5": ("answer_q5 = 0.2 * 60 / 80", f"✗ q5: {SLIPS['mg_per_l_not_ng_per_ml']}"),
        "q7": ('answer_q7 = "c"', re.compile(r'^✗ q7: use a capital letter: "C", not "c"$')),
    }
    _run_cells(page, cells, position["setup"], position["setup"])
    for question, (code, message) in slips.items():
        _answer(page, cells.nth(position[f"{question}_answer"]), code)
        _run_cells(page, cells, position[f"{question}_answer"], position[f"{question}_test"])
        feedback = cells.nth(position[f"{question}_test"]).locator(".jp-OutputArea-output")
        expect(feedback).to_have_text(message)
        expect(feedback).not_to_contain_text("Traceback")
    cells.nth(position["q3_test"]).scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "journey-quiz-slips.png"))

    # Then every answer right: every visible check passes, and so does Validate.
    answers = solutions(QUIZ)
    for grade_id, code in answers.items():
        _answer(page, cells.nth(position[grade_id]), code)
    run_all(page)
    _no_error_outputs(page)
    expect(panel.locator(".jp-OutputArea-output").filter(has_text=re.compile(r"^q\d+, form checked: "))).to_have_count(len(answers))
    dialog = _validate(page)
    expect(dialog.locator(".validation-success")).to_be_visible()
    dialog.get_by_role("button", name="Ok").click()
    # The quiz itself tells the learner what that success means.
    expect(panel.locator(".jp-MarkdownOutput").first).to_contain_text("means that every answer has the right form, not that it is right")

    # Graded from inside the quiz: Validate saved it, so the last cell grades the saved file and shows the score here.
    grade_cell = cells.nth(position["grade-here"])
    grade_cell.scroll_into_view_if_needed()
    _run_cells(page, cells, position["grade-here"], position["grade-here"])
    score = grade_cell.locator(".ketamine-grade h3")
    total = sum(question_points(QUIZ).values())
    expect(score).to_have_text(f"Your score: {total} / {total}", timeout=120_000)
    expect(grade_cell.locator(".ketamine-grade tbody tr")).to_have_count(len(answers))
    page.screenshot(path=str(SCREENSHOTS / "journey-quiz-graded-in-the-notebook.png"))
    # An answer changed and run but not saved is not graded: the cell says "save first".
    _answer(page, cells.nth(position["q7_answer"]), 'answer_q7 = "A"')
    _run_cells(page, cells, position["q7_answer"], position["q7_answer"])
    _run_cells(page, cells, position["grade-here"], position["grade-here"])
    expect(grade_cell.locator(".ketamine-grade-unsaved")).to_contain_text("Save first", timeout=60_000)
    _answer(page, cells.nth(position["q7_answer"]), answers["q7_answer"])
    _run_cells(page, cells, position["q7_answer"], position["q7_answer"])
    page.keyboard.press("Control+s")

    # The answers are saved in the learner's work folder; the course's tracked files are untouched.
    saved = nbformat.read(lab.course / "release" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    assert {c.metadata["nbgrader"]["grade_id"]: c.source for c in saved.cells if c.metadata.get("nbgrader", {}).get("solution")} == answers
    assert git_status(lab.clone) == [], "learning changed the course's tracked files"
    for personal in (".jupyter", ".local/share/jupyter", ".ipython"):
        assert not (lab.home / personal).exists(), f"the course used the learner's own ~/{personal}"
    expect(page.locator(".jp-toast-message, .Toastify__toast")).to_have_count(0)  # no news or update pop-up
