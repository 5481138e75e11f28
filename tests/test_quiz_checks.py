"""The quizzes' visible checks, run as a learner runs them: each names the slip that happened, and none claims more than it checked.

Each case types a learner's answer into the student version (``release/``),
runs the setup cell, the answer and the question's check cell, and reads what
the check says. The slips are those the course teaches to avoid: pounds used
as kilograms, a rate per minute for per hour, a percentage for a fraction, a
fraction for a concentration, a forgotten bioavailability or unit conversion.
"""

from __future__ import annotations

import ast
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


CHECK_CASES = [
    # quiz, question, the learner's answer, what the visible check must say (the answer is out of the plausible range)
    ("quiz03_pharmacokinetics", "q3", "answer_q3 = 0.5 * 143 / 2.2046 / 10 / 40", SLIPS["per_minute"]),
    ("quiz03_pharmacokinetics", "q4", "answer_q4 = 0.5 ** (5 / 2.5)", "this looks like a fraction (between 0 and 1), but the question asks for an amount in ng/mL"),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 0.2 * 60 / 80", SLIPS["mg_per_l_not_ng_per_ml"]),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 20 * 60 / 80 * 1000", SLIPS["percent_not_fraction"]),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 4.7139 * 60", "a factor of 60 off: check minutes vs hours"),
    ("quiz02_mechanism", "q3", 'answer_q3 = 100 / (1 + load_table("nmda_affinity").row("S-ketamine")["ki_um"])', "this looks like a percentage"),
    ("quiz02_mechanism", "q4", 'answer_q4 = load_table("nmda_affinity").row("R-ketamine")["ki_um"]', SLIPS["um_not_ng_per_ml"]),
    ("quiz04_evidence", "q1", "answer_q1 = 1 / (38 - 17)", SLIPS["percent_not_fraction"]),
    ("quiz04_evidence", "q2", 'r = load_table("trials").row("cochrane2021")\nanswer_q2 = r["event_drug_pct"] - r["event_control_pct"]', "this looks like a percentage"),
    ("quiz05_safety", "q1", "answer_q1 = 1 / (23 - 9)", SLIPS["percent_not_fraction"]),
    ("quiz05_safety", "q2", "answer_q2 = 120", "a factor of 60 off: check minutes vs hours"),
]

GRADED_SLIPS = [
    # quiz, question, the learner's answer, the slip the hidden test names when the quiz is graded
    ("quiz03_pharmacokinetics", "q1", "answer_q1 = 0.5 * 143", "pounds_as_kg"),
    ("quiz03_pharmacokinetics", "q2", "answer_q2 = 0.5 * 143 / 10", "pounds_as_kg"),
    ("quiz03_pharmacokinetics", "q3", "answer_q3 = 0.5 * 143 / 10 / (40 / 60)", "pounds_as_kg"),
    ("quiz03_pharmacokinetics", "q3", "answer_q3 = 0.5 * 143 / 2.2046 / 10 / 40", "per_minute"),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 60 / 80 * 1000", "no_bioavailability"),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 0.2 * 60 / 80", "mg_per_l_not_ng_per_ml"),
    ("quiz03_pharmacokinetics", "q5", "answer_q5 = 20 * 60 / 80 * 1000", "percent_not_fraction"),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 6.9077", "s_ketamine_not_racemic"),
    ("quiz03_pharmacokinetics", "q10", "answer_q10 = 4.0472", "from_infusion_end"),
    ("quiz02_mechanism", "q4", 'answer_q4 = load_table("nmda_affinity").row("R-ketamine")["ki_um"]', "um_not_ng_per_ml"),
    ("quiz04_evidence", "q1", "answer_q1 = 1 / (38 - 17)", "percent_not_fraction"),
    ("quiz05_safety", "q1", "answer_q1 = 1 / (23 - 9)", "percent_not_fraction"),
]


def _source_cells(quiz: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "source" / quiz / f"{quiz}.ipynb", as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id", c.id): c.source for c in nb.cells if c.cell_type == "code"}


def hidden_check(quiz: str, question: str, answer_code: str) -> str:
    """Run setup, the learner's answer and the question's hidden test (from source/); what it said when it failed."""
    namespace: dict = {}
    exec(_cells(quiz)["setup"], namespace)  # noqa: S102 - the quiz's own setup cell
    exec(answer_code, namespace)  # noqa: S102 - a learner's answer, as in the notebook
    hidden = split_hidden(_source_cells(quiz)[f"{question}_test"])[1]
    assert hidden, f"{quiz} {question} has no hidden test"
    with pytest.raises(QuizCheckFailed) as failure, contextlib.redirect_stdout(io.StringIO()):
        exec(hidden, namespace)  # noqa: S102 - the instructor's hidden test, as the grader runs it
    return failure.value.message


@pytest.mark.parametrize(("quiz", "question", "code", "message"), CHECK_CASES, ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_each_out_of_range_slip_is_named_by_its_check(quiz: str, question: str, code: str, message: str) -> None:
    passed, said = visible_check(quiz, question, code)
    assert not passed
    assert message in said
    # ...and only that slip: no second diagnosis that contradicts it
    assert said.count(":") <= message.count(":") + 2, said


@pytest.mark.parametrize(("quiz", "question", "code", "slip"), GRADED_SLIPS, ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_each_slip_is_named_when_graded(quiz: str, question: str, code: str, slip: str) -> None:
    """The hidden test names the slip (the visible check cannot: in range, it sees only the form)."""
    said = hidden_check(quiz, question, code)
    assert said.startswith(SLIPS[slip] + ". Revisit "), said
    assert not any(other in said for other in SLIPS.values() if other != SLIPS[slip]), said


@pytest.mark.parametrize(("quiz", "question"), sorted({(quiz, question) for quiz, question, _, _ in GRADED_SLIPS}))
def test_wrong_answers_not_a_slip_are_not_called_one(quiz: str, question: str) -> None:
    """A wrong answer far from every slip gets the plain verdict, not a slip's name."""
    namespace: dict = {}
    exec(_cells(quiz)["setup"], namespace)  # noqa: S102 - the quiz's own setup cell
    exec(solutions(quiz)[f"{question}_answer"], namespace)  # noqa: S102 - the quiz's own solution
    right = float(namespace[f"answer_{question}"])
    said = hidden_check(quiz, question, f"answer_{question} = {right * 1.37!r}")
    assert said.startswith("not within 1% of the expected value. "), said


def test_an_earlier_release_s_fingerprints_recognise_nothing() -> None:
    """A learner's copy of an earlier release passes fingerprints of wrong values (slips=): its check now says the same for them."""
    import hashlib

    from ketamine_course.quiz import check_number

    def said(value: float, slips: dict[str, str]) -> str:
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            check_number("q1", value, "mg", (5.0, 200.0), slips=slips)
        return shown.getvalue().replace(repr(value), "")

    for slip_value in (71.5, 7.15, 150.0):
        fingerprint = hashlib.sha256(f"{slip_value:.3g}".encode()).hexdigest()[:16]  # as releases before 98b85b3 wrote them
        assert said(slip_value, {"pounds_as_kg": fingerprint}) == said(33.0, {}), slip_value


@pytest.mark.parametrize("quiz", QUIZZES)
def test_no_check_cell_recognises_a_wrong_value(quiz: str) -> None:
    """Inside its plausible range a visible check says the same for every value: it cannot be searched for a slip's wrong value (and so the answer)."""
    from ketamine_course import quiz as checks

    for grade_id, source in _cells(quiz).items():
        visible = split_hidden(source)[0] if grade_id.endswith("_test") else ""
        calls = [node for node in ast.walk(ast.parse(visible)) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check_number"]
        for call in calls:
            assert not any(k.arg == "slips" for k in call.keywords), f"{quiz} {grade_id} recognises wrong values by fingerprint"
            low, high = ast.literal_eval(call.args[3])
            question = ast.literal_eval(call.args[0])
            verdicts = set()
            for step in range(2001):  # 2001 values spread evenly (in log where the range allows) over the plausible range
                value = low * (high / low) ** (step / 2000) if low > 0 else low + (high - low) * step / 2000
                shown = io.StringIO()
                with contextlib.redirect_stdout(shown):
                    checks.check_number(question, value, "u", (low, high), **{k.arg: ast.literal_eval(k.value) for k in call.keywords})
                verdicts.add(shown.getvalue())
            assert len(verdicts) == 1, f"{quiz} {grade_id}: the check tells values in range apart: {verdicts}"


def test_every_slip_a_quiz_names_is_tried() -> None:
    """Every slip a hidden test or a check names is typed in by a test above."""
    named_when_graded, named_by_check = set(), set()
    for quiz in QUIZZES:
        for grade_id, source in _source_cells(quiz).items():
            if not grade_id.endswith("_test"):
                continue
            for node in ast.walk(ast.parse(source)):
                for keyword in node.keywords if isinstance(node, ast.Call) else []:
                    if keyword.arg in ("slips", "scale_slips") and isinstance(keyword.value, ast.Dict):
                        found = named_when_graded if keyword.arg == "slips" else named_by_check
                        found |= {(quiz, grade_id.split("_")[0], ast.literal_eval(k)) for k in keyword.value.keys if k is not None}
    assert named_when_graded and named_by_check, "no quiz names a slip"
    graded = {(quiz, question, slip) for quiz, question, _, slip in GRADED_SLIPS}
    checked = {(quiz, question, slip) for quiz, question, _, message in CHECK_CASES for slip, text in SLIPS.items() if text == message}
    assert named_when_graded <= graded, f"slips named when graded but never tried: {sorted(named_when_graded - graded)}"
    assert named_by_check <= checked, f"slips named by a check but never tried: {sorted(named_by_check - checked)}"
    assert checked <= named_by_check, f"check cases expect slips their checks do not list: {sorted(checked - named_by_check)}"


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


@pytest.mark.parametrize(("failure", "words"), [
    ("not run: the call ran past the time limit (the grader interrupted it)", "did not finish in the time the grader allows"),
    ("KeyboardInterrupt: ", "did not finish in the time the grader allows"),
    ("ZeroDivisionError: division by zero", "raised ZeroDivisionError"),
    ("the hidden tests called your functions more than 50 times", "could not be checked: the hidden tests called your functions more than 50 times"),
    ("your function's result could not be read (did it stop the kernel?)", "could not be checked: your function's result could not be read"),
    ("StudentError: ", "could not be checked"),
])
def test_a_hidden_case_that_fails_in_the_kernel_is_said_in_words(failure: str, words: str) -> None:
    """A call of the student's function made in their kernel fails as the grader's StudentError: never named to the student."""
    from ketamine_course.grading.hidden import StudentError
    from ketamine_course.quiz import grade_function

    def called_in_the_kernel(*args: float) -> float:
        raise StudentError(failure)

    with pytest.raises(QuizCheckFailed) as failed:
        grade_function("q7", called_in_the_kernel, lambda x: x, [(1.0,)], why="Revisit the timeline.")
    said = failed.value.message
    assert said.startswith(f"hidden case 1: your function {words}"), said
    assert "StudentError" not in said and said.endswith("Revisit the timeline."), said


@pytest.mark.parametrize(("rel", "abs_tol", "said"), [
    (0.01, 0.0, "not within 1% of the expected value"),
    (0.0, 0.0, "not the expected value"),
    (1e-9, 0.0, "not the expected value"),  # a rounding guard is no tolerance to the student: never "within 1e-07%"
    (0.0, 0.5, "not within 0.5 of the expected value"),
    (0.005, 0.1, "not within 0.5% or 0.1 of the expected value"),  # the check accepts either: both are said
])
def test_a_wrong_number_is_told_how_far_it_may_be(rel: float, abs_tol: float, said: str) -> None:
    from ketamine_course.quiz import grade_number

    with pytest.raises(QuizCheckFailed) as failed:
        grade_number("q3", 200.0, 100.0, "Revisit the dose.", rel=rel, abs_tol=abs_tol)
    assert failed.value.message == f"{said}. Revisit the dose."
