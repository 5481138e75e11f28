"""The quizzes' visible checks, run as a learner runs them: each names the slip that happened, and none claims more than it checked.

Each case types a learner's answer into the student version (``release/``),
runs the setup cell, the answer and the question's check cell, and reads what
the check says. The slips are those the course teaches to avoid: pounds used
as kilograms, a rate per minute for per hour, a percentage for a fraction, a
fraction for a concentration, a forgotten bioavailability or unit conversion.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest

from grading_helpers import solutions
from ketamine_course.grading import QUIZZES, split_hidden
from ketamine_course.quiz import NOT_YET_GRADED, SLIPS, QuizCheckFailed

ROOT = Path(__file__).resolve().parents[1]


def _cells(quiz: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "release" / quiz / f"{quiz}.ipynb", as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id", c.id): c.source for c in nb.cells if c.cell_type == "code"}


def visible_check(quiz: str, question: str, answer_code: str) -> tuple[bool, str]:
    """Run setup, the learner's answer and the visible check; (passed, what the check said)."""
    cells = _cells(quiz)
    namespace: dict = {}
    exec(cells["setup"], namespace)  # noqa: S102 - the quiz's own setup cell
    exec(answer_code, namespace)  # noqa: S102 - a learner's answer, as in the notebook
    shown = io.StringIO()
    try:
        with contextlib.redirect_stdout(shown):
            exec(cells[f"{question}_test"], namespace)  # noqa: S102 - the student version's check cell
    except QuizCheckFailed as failure:
        return False, failure.message
    return True, shown.getvalue().strip()


SLIP_CASES = [
    # quiz, question, the learner's answer, what the check must say
    ("quiz03_pharmacokinetics", "q1", "answer_q1 = 0.5 * 143", SLIPS["pounds_as_kg"]),
    ("quiz03_pharmacokinetics", "q2", "answer_q2 = 0.5 * 143 / 10", SLIPS["pounds_as_kg"]),
    ("quiz03_pharmacokinetics", "q3", "answer_q3 = 0.5 * 143 / 10 / (40 / 60)", SLIPS["pounds_as_kg"]),
    ("quiz03_pharmacokinetics", "q3", "answer_q3 = 0.5 * 143 / 2.2046 / 10 / 40", SLIPS["per_minute"]),
    ("quiz03_pharmacokinetics", "q4", "answer_q4 = 0.5 ** (5 / 2.5)", "this looks like a fraction (between 0 and 1), but the question asks for an amount in ng/mL"),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 60 / 80 * 1000", SLIPS["no_bioavailability"]),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 0.2 * 60 / 80", SLIPS["mg_per_l_not_ng_per_ml"]),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 20 * 60 / 80 * 1000", SLIPS["percent_not_fraction"]),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 6.9077", SLIPS["s_ketamine_not_racemic"]),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 4.0472", SLIPS["from_infusion_end"]),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 4.7139 * 60", "a factor of 60 off: check minutes vs hours"),
    ("quiz02_mechanism", "q3", 'answer_q3 = 100 / (1 + load_table("nmda_affinity").row("S-ketamine")["ki_um"])', "this looks like a percentage"),
    ("quiz02_mechanism", "q4", 'answer_q4 = load_table("nmda_affinity").row("R-ketamine")["ki_um"]', SLIPS["um_not_ng_per_ml"]),
    ("quiz04_evidence", "q1", "answer_q1 = 1 / (38 - 17)", SLIPS["percent_not_fraction"]),
    ("quiz04_evidence", "q2", 'r = load_table("trials").row("cochrane2021")\nanswer_q2 = r["event_drug_pct"] - r["event_control_pct"]', "this looks like a percentage"),
    ("quiz05_safety", "q1", "answer_q1 = 1 / (23 - 9)", SLIPS["percent_not_fraction"]),
    ("quiz05_safety", "q2", "answer_q2 = 120", "a factor of 60 off: check minutes vs hours"),
]


@pytest.mark.parametrize(("quiz", "question", "code", "message"), SLIP_CASES, ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_each_slip_is_named_by_its_check(quiz: str, question: str, code: str, message: str) -> None:
    passed, said = visible_check(quiz, question, code)
    assert not passed
    assert message in said
    # ...and only that slip: no second diagnosis that contradicts it
    assert said.count(":") <= message.count(":") + 2, said


@pytest.mark.parametrize("quiz", QUIZZES)
def test_right_answers_pass_the_checks_without_being_called_right(quiz: str) -> None:
    for grade_id, code in solutions(quiz).items():
        question = grade_id.split("_")[0]
        passed, said = visible_check(quiz, question, code)
        assert passed, f"{quiz} {question}: {said}"
        assert said.startswith(f"{question}, form checked:") and said.endswith(f"{NOT_YET_GRADED}."), said
        assert "✓" not in said and not re.search(r"\b(correct|right answer|pass)", said), said


def test_units_and_percentages_are_told_apart() -> None:
    from ketamine_course.quiz import check_number

    def said(value: float, **kwargs) -> str:
        with pytest.raises(QuizCheckFailed) as failure:
            check_number("q", value, kwargs.pop("unit", "ng/mL"), kwargs.pop("plausible", (1, 200)), **kwargs)
        return failure.value.message

    assert "percentage" in said(25, unit="(fraction)", plausible=(0, 1), fraction=True)
    assert "1000" not in said(25, unit="(fraction)", plausible=(0, 1), fraction=True)
    assert "fraction" in said(0.125, not_a_fraction=True) and "1000" not in said(0.125, not_a_fraction=True)
    assert "factor of 1000" in said(0.2, plausible=(50, 500))  # 200 ng/mL typed in µg/mL
    assert "factor of 60" in said(600, unit="mL/h", plausible=(1, 30))
    assert "between 1 and 30" in said(0.02, unit="mL/h", plausible=(1, 30))  # 1000 and 60 both fit: no guess


@pytest.mark.parametrize("quiz", QUIZZES)
def test_check_cells_show_no_computation(quiz: str) -> None:
    for grade_id, source in _cells(quiz).items():
        if grade_id.endswith("_test"):
            visible, _ = split_hidden(source)
            assert not re.search(r"[\d)]\s*[-+*/]\s*[\d(]", visible), f"{quiz} {grade_id} shows arithmetic: {visible}"


@pytest.mark.parametrize("quiz", QUIZZES)
def test_feedback_never_states_an_answer(quiz: str) -> None:
    nb = nbformat.read(ROOT / "source" / quiz / f"{quiz}.ipynb", as_version=4)
    for cell in nb.cells:
        _, hidden = split_hidden(cell.source) if cell.cell_type == "code" else ("", None)
        for why in re.findall(r'why="([^"]*)"', hidden or ""):
            assert "=" not in why and not re.search(r"\d\s*[-+*/]\s*[\d(]|\*\*", why), f"{quiz}: feedback gives a formula: {why}"
            assert why.startswith(("Revisit ", "Compare ", "See ", "Look at", "Read ", "An interval")), why


def test_quizzes_tell_what_validate_checks() -> None:
    for quiz in QUIZZES:
        nb = nbformat.read(ROOT / "release" / quiz / f"{quiz}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "passes all the tests" in text and "not that it is right" in text, quiz


def _practice(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return text[text.index("## Practice") : text.index("## Key points")]


def _questions(quiz: str) -> str:
    nb = nbformat.read(ROOT / "release" / quiz / f"{quiz}.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id", "") for c in nb.cells]
    return "\n".join(c.source for c, i in zip(nb.cells, ids, strict=True) if c.cell_type == "markdown" and (i.endswith("_question") or i == "scenario"))


def _words(text: str) -> list[str]:
    return re.findall(r"[\w.−-]+", re.sub(r"\]\([^)]*\)", "]", text).lower())


@pytest.mark.parametrize("unit", __import__("ketamine_course.lesson", fromlist=["UNITS"]).UNITS, ids=lambda u: u.quiz)
def test_quizzes_do_not_repeat_the_lessons_practice(unit) -> None:
    """A quiz tests a lesson's ideas on new numbers and new cases, not the worked answers the lesson reveals."""
    from test_lessons import _data_numbers

    practice, questions = _practice(ROOT / "notebooks" / unit.notebook), _questions(unit.quiz)
    words = _words(practice)
    shingles = {" ".join(words[i : i + 8]) for i in range(len(words) - 7)}
    quiz_words = _words(questions)
    repeated = {" ".join(quiz_words[i : i + 8]) for i in range(len(quiz_words) - 7)} & shingles
    assert not repeated, f"{unit.quiz} repeats the lesson's practice word for word: {sorted(repeated)[:3]}"
    worked = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?", practice)) - _data_numbers()
    reused = {n for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", questions) if n in worked}
    assert not reused, f"{unit.quiz} reuses the numbers of the lesson's worked practice: {sorted(reused)}"


def test_every_slip_a_quiz_names_is_tried() -> None:
    named = set()
    for quiz in QUIZZES:
        for grade_id, source in _cells(quiz).items():
            if grade_id.endswith("_test"):
                for slip in re.findall(r'"([a-z_]+)": "(?:[0-9a-f]{2}|[0-9a-f]{16})"', source):
                    named.add((quiz, grade_id.split("_")[0], SLIPS[slip]))
    tried = {(quiz, question, message) for quiz, question, _, message in SLIP_CASES}
    assert named, "no quiz names a slip"
    assert named <= tried, f"slips named but never tried: {sorted(named - tried)}"


def _named_slips() -> list[tuple[str, str, str, str]]:
    """(quiz, question, slip, fingerprint) for every slip a check cell names."""
    found = []
    for quiz in QUIZZES:
        for grade_id, source in _cells(quiz).items():
            if grade_id.endswith("_test"):
                for slip, fingerprint in re.findall(r'"([a-z_]+)": "([0-9a-f]{2}|[0-9a-f]{16})"', source):
                    found.append((quiz, grade_id.split("_")[0], slip, fingerprint))
    return found


@pytest.mark.parametrize(("quiz", "question"), sorted({(q, n) for q, n, _, _ in _named_slips()}))
def test_no_answer_the_grader_accepts_is_named_a_slip(quiz: str, question: str) -> None:
    """A short fingerprint matches unrelated values too: never one within 2% of the solution."""
    namespace: dict = {}
    exec(_cells(quiz)["setup"], namespace)  # noqa: S102 - the quiz's own setup cell
    exec(solutions(quiz)[f"{question}_answer"], namespace)  # noqa: S102 - the quiz's own solution
    right = float(namespace[f"answer_{question}"])
    for step in range(-40, 41):  # every three-figure value from 2% below to 2% above
        value = right * (1 + step / 2000)
        passed, said = visible_check(quiz, question, f"answer_{question} = {value!r}")
        assert said not in SLIPS.values(), (value, said)


@pytest.mark.parametrize(("quiz", "question", "slip", "fingerprint"), _named_slips())
def test_a_check_cell_does_not_give_its_slip_value_away(quiz: str, question: str, slip: str, fingerprint: str) -> None:
    """Trying every three-figure number against a fingerprint leaves dozens of candidates around the slip's value, not one."""
    from ketamine_course.quiz import slip_fingerprint

    assert len(fingerprint) == 2, "short fingerprints only in the course's own quizzes"
    matches = [mantissa * 10.0 ** exponent for exponent in range(-4, 5) for mantissa in range(100, 1000)
               if slip_fingerprint(mantissa * 10.0 ** exponent, question) == fingerprint]
    assert len(matches) >= 20, matches
