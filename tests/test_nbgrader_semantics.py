"""Hidden tests as an nbgrader instructor writes them: the course's pipeline gives stock nbgrader's scores.

A hand-built quiz uses the patterns instructors use: asserts on lists, tuples,
dicts, sets, NumPy arrays and pandas objects, a student's function called on
inputs the hidden test computes in a loop, a helper defined in the visible part
of the cell, partial credit by the cell's last value, and a function that
writes to stderr. Right, half-right, wrong and blank submissions are graded by
stock nbgrader (hidden tests in the student's kernel, no sandbox) and by the
course's pipeline (hidden tests in the grader, sandboxed): every question must
score the same. Objects that lie (a list whose ``==`` is always true) fool stock
nbgrader and earn nothing here. A hidden test the judge cannot run faithfully
is refused when the quiz is generated.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import sandbox_or_skip

pytestmark = pytest.mark.slow
QUIZ = "patterns"


def _cell(kind: str, source: str, grade_id: str | None = None, *, solution: bool = False, points: int = 0, locked: bool = False) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {
            "grade": points > 0, "grade_id": grade_id, "locked": locked or points > 0, "schema_version": 3, "solution": solution,
            **({"points": points} if points else {}),
        }
    return cell


def _answer(grade_id: str, solution: str) -> nbformat.NotebookNode:
    """An answer cell; the release version holds nbgrader's stub (``raise NotImplementedError()``)."""
    return _cell("code", f"### BEGIN SOLUTION\n{solution}\n### END SOLUTION", grade_id, solution=True)


def _test(grade_id: str, visible: str, hidden: str, points: int) -> nbformat.NotebookNode:
    return _cell("code", f"{visible}\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS".lstrip("\n"), grade_id, points=points)


SOLUTIONS = {
    "a_list": "answer_list = [1, 2, 3]",
    "a_func": "def square(x):\n    return x * x",
    "a_array": "import numpy as np\narr = np.arange(4) * 0.5",
    "a_frame": 'import pandas as pd\ndf = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.0, 1.5]})',
    "a_partial": "a5 = 3\nb5 = 4",
    "a_helper": "answer6 = 2.5",
    "a_mixed": 'answer7 = {"x": (1, 2), "y": {3}}',
    "a_noisy": "import sys\ndef noisy(x):\n    print('careful', file=sys.stderr)\n    return x",
    # names the course's own helpers use, as a student may name their answers
    "a_names": "receptor = 'NMDA'\ndata = [1, 2]\npk = 3.5\nload_table = 'table'\ncheck_number = 7\ngrade_choice = 'B'",
    "a_course": "from ketamine_course import dosing\nfrom ketamine_course.dosing import dose_mg as my_dose\n"
                "dose = dosing.dose_mg(70, 0.5, 'antidepressant_research_iv')",
    "a_pandas": (
        "import pandas as pd\n"
        "trials = pd.DataFrame({'drug': pd.Categorical(['ket', 'esk', 'ket']), 'n': pd.array([10, None, 30], dtype='Int64'),\n"
        "    'day': pd.to_datetime(['2020-01-01', '2020-01-02', '2020-01-03']), 'arm': pd.array(['a', 'b', None], dtype='string')},\n"
        "    index=pd.Index(['t1', 't2', 't3'], name='trial'))\n"
        "totals = pd.DataFrame({'g': ['a', 'b', 'a'], 'v': [1.5, 2.0, 3.0]}).groupby('g').sum()\n"
        "stamps = pd.Series([1, 2], index=pd.date_range('2020-01-01', periods=2, tz='UTC'), name='s')"
    ),
    "a_types": (
        "import dataclasses, datetime, decimal, fractions, collections\nimport numpy as np\n"
        "@dataclasses.dataclass\nclass Patient:\n    weight_kg: float\n    age_y: int\n"
        "Dose = collections.namedtuple('Dose', ['mg', 'route'])\n"
        "patient = Patient(70.0, 30)\nplan = Dose(35.0, 'iv')\n"
        "others = [1 + 2j, decimal.Decimal('0.5'), fractions.Fraction(1, 3), datetime.date(2019, 3, 5), range(3), b'ok',\n"
        "    np.array(['a', 'b']), np.array(['2020-01-01'], dtype='datetime64[D]'), np.complex128(1j)]"
    ),
    "a_warns": "warn_answer = 1",
}
TESTS = [
    ("t_list", "", "assert answer_list == [1, 2, 3]", 2),
    ("t_func", "assert callable(square)", "for x in range(-3, 6):\n    assert square(x) == x * x, 'square is wrong'", 2),
    ("t_array", "import numpy as np", "assert np.allclose(arr, np.arange(4) * 0.5)\nassert arr.shape == (4,)", 2),
    ("t_frame", "", 'assert list(df.columns) == ["a", "b"]\nassert df["a"].sum() == 6\nassert abs(df["b"].mean() - 1.0) < 1e-9', 2),
    ("t_partial", "", "score = 0\nif a5 == 3:\n    score += 1\nif b5 == 4:\n    score += 1\nscore", 2),
    ("t_helper", "def close(a, b):\n    return abs(a - b) < 1e-6", "assert close(answer6, 2.5)", 1),
    ("t_mixed", "", 'assert answer7 == {"x": (1, 2), "y": {3}}', 1),
    ("t_noisy", "", "assert noisy(2) == 2", 1),
    ("t_names", "", "assert receptor == 'NMDA' and data == [1, 2] and pk == 3.5\n"
     "assert load_table == 'table' and check_number == 7 and grade_choice == 'B'", 1),
    ("t_course", "", "assert abs(dose - dosing.dose_mg(70, 0.5, 'antidepressant_research_iv')) < 1e-9\n"
     "assert my_dose(60, 0.5, 'antidepressant_research_iv') == 30", 1),
    ("t_pandas", "import pandas as pd", (
        "expected = pd.DataFrame({'drug': pd.Categorical(['ket', 'esk', 'ket']), 'n': pd.array([10, None, 30], dtype='Int64'),\n"
        "    'day': pd.to_datetime(['2020-01-01', '2020-01-02', '2020-01-03']), 'arm': pd.array(['a', 'b', None], dtype='string')},\n"
        "    index=pd.Index(['t1', 't2', 't3'], name='trial'))\n"
        "pd.testing.assert_frame_equal(trials, expected)\n"
        "pd.testing.assert_frame_equal(totals, pd.DataFrame({'g': ['a', 'b', 'a'], 'v': [1.5, 2.0, 3.0]}).groupby('g').sum())\n"
        "pd.testing.assert_series_equal(stamps, pd.Series([1, 2], index=pd.date_range('2020-01-01', periods=2, tz='UTC'), name='s'))"
    ), 2),
    ("t_types", "", (
        "import datetime, decimal, fractions\nimport numpy as np\n"
        "assert patient.weight_kg == 70.0 and patient.age_y == 30 and patient == Patient(70.0, 30)\n"
        "assert plan == (35.0, 'iv') and plan.mg == 35.0 and plan.route == 'iv'\n"
        "assert others[:6] == [1 + 2j, decimal.Decimal('0.5'), fractions.Fraction(1, 3), datetime.date(2019, 3, 5), range(3), b'ok']\n"
        "np.testing.assert_array_equal(others[6], np.array(['a', 'b']))\n"
        "assert others[7][0] == np.datetime64('2020-01-01') and others[8] == 1j"
    ), 2),
    ("t_warns", "", "import numpy as np\nnp.mean([])  # numpy warns: the mean of nothing\nassert warn_answer == 1", 1),
]

SOLUTIONS_PANDAS_WRONG = (
    "import pandas as pd\n"
    "trials = pd.DataFrame({'drug': ['ket', 'esk', 'ket'], 'n': [10.0, None, 30.0],\n"
    "    'day': ['2020-01-01', '2020-01-02', '2020-01-03'], 'arm': ['a', 'b', None]}, index=['t1', 't2', 't3'])\n"
    "totals = pd.DataFrame({'v': [4.5, 2.0]}, index=['a', 'b'])\n"
    "stamps = pd.Series([1, 2], index=pd.date_range('2020-01-01', periods=2), name='s')"
)
SUBMISSIONS = {
    "right": SOLUTIONS,
    "half": {
        **SOLUTIONS,
        "a_partial": "a5 = 3\nb5 = 5",
        "a_func": "def square(x):\n    return x * abs(x)",
        "a_frame": 'import pandas as pd\ndf = pd.DataFrame({"a": [1, 2, 4], "b": [0.5, 1.0, 1.5]})',
        "a_pandas": SOLUTIONS_PANDAS_WRONG,
    },
    "wrong": {
        "a_list": "answer_list = [1, 2]",
        "a_func": "def square(x):\n    return 2 * x",
        "a_array": "import numpy as np\narr = np.arange(4)",
        "a_frame": 'import pandas as pd\ndf = pd.DataFrame({"a": [0, 0, 0]})',
        "a_partial": "a5 = 0\nb5 = 0",
        "a_helper": "answer6 = 3",
        "a_mixed": 'answer7 = {"x": [1, 2], "y": {3}}',
        "a_noisy": "def noisy(x):\n    return x + 1",
        "a_names": "receptor = 'AMPA'\ndata = [1, 2]\npk = 3.5\nload_table = 'table'\ncheck_number = 7\ngrade_choice = 'B'",
        "a_course": "from ketamine_course import dosing\ndef my_dose(*args):\n    return 31\ndose = 34.0",
        "a_pandas": SOLUTIONS_PANDAS_WRONG,
        "a_types": "patient = None\nplan = (35.0, 'iv')\nothers = []",
        "a_warns": "warn_answer = 2",
    },
    "blank": {},
}
LIARS = {
    "a_list": "class Liar(list):\n    def __eq__(self, other):\n        return True\nanswer_list = Liar()",
    "a_helper": "class Anything(float):\n    def __sub__(self, other):\n        return 0.0\n    def __rsub__(self, other):\n        return 0.0\nanswer6 = Anything(9)",
    "a_mixed": "class Liar(dict):\n    def __eq__(self, other):\n        return True\nanswer7 = Liar()",
}


def _source_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [_cell("markdown", "# Patterns", "intro", locked=True)]
    for (answer_id, solution), (test_id, visible, hidden, points) in zip(SOLUTIONS.items(), TESTS, strict=True):
        cells.append(_answer(answer_id, solution))
        cells.append(_test(test_id, visible, hidden, points))
    nb.cells = cells
    return nb


def _student(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    import copy

    nb = copy.deepcopy(release)
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def _course(root: Path) -> Path:
    (root / "source" / QUIZ).mkdir(parents=True)
    nbformat.write(_source_notebook(), root / "source" / QUIZ / f"{QUIZ}.ipynb")
    return root


def _grade(root: Path, config, submissions: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    from ketamine_course.grading.run import _api, _quiet_nbgrader

    api = _api(config)
    with _quiet_nbgrader():
        assert api.generate_assignment(QUIZ, force=True)["success"]
    release = nbformat.read(root / "release" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    for student, answers in submissions.items():
        folder = root / "submitted" / student / QUIZ
        folder.mkdir(parents=True)
        nbformat.write(_student(release, answers), folder / f"{QUIZ}.ipynb")
    scores = {}
    with _quiet_nbgrader():
        for student in submissions:
            outcome = api.autograde(QUIZ, student, force=True, create=True)
            assert outcome["success"], outcome.get("log")
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        for student in submissions:
            notebook = gradebook.find_submission_notebook(QUIZ, QUIZ, student)
            scores[student] = {grade.name: float(grade.score) for grade in notebook.grades}
            scores[student]["flagged"] = float(notebook.flagged)
    return scores


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    sandbox_or_skip()
    from traitlets.config import Config

    from ketamine_course.grading.config import grading_config

    everyone = {**SUBMISSIONS, "liar": {**SOLUTIONS, **LIARS}}
    stock_root = _course(tmp_path_factory.mktemp("stock"))
    stock = Config()
    stock.CourseDirectory.course_id = "patterns-course"
    stock.CourseDirectory.root = str(stock_root)
    stock.CourseDirectory.db_url = f"sqlite:///{stock_root / 'gradebook.db'}"
    stock.Execute.timeout = 30
    ours_root = _course(tmp_path_factory.mktemp("ours"))
    ours = grading_config(ours_root, f"sqlite:///{ours_root / 'gradebook.db'}")
    return _grade(stock_root, stock, everyone), _grade(ours_root, ours, everyone), ours_root


@pytest.mark.parametrize("student", list(SUBMISSIONS))
def test_every_question_scores_as_stock_nbgrader_scores_it(graded, student: str) -> None:
    stock, ours, _ = graded
    questions = [test_id for test_id, *_ in TESTS]
    assert {q: ours[student][q] for q in questions} == {q: stock[student][q] for q in questions}


def test_the_patterns_are_judged_not_just_accepted(graded) -> None:
    """The comparison can fail: right work earns every point but the stderr one, half-right earns part of the partial-credit cell."""
    stock, ours, _ = graded
    assert ours["right"]["t_list"] == 2 and ours["right"]["t_func"] == 2 and ours["right"]["t_frame"] == 2
    assert ours["right"]["t_noisy"] == 0, "nbgrader gives no credit to a test cell with stderr output"
    assert ours["half"]["t_partial"] == 1 and ours["half"]["t_func"] == 0
    assert all(score == 0 for q, score in ours["blank"].items() if q != "flagged")


def test_any_value_an_instructor_tests_scores_as_in_the_students_kernel(graded) -> None:
    """Names the course's helpers use, course helpers, pandas dtypes and indexes, Python's and NumPy's other types, and a
    hidden test that warns: right work earns these points, wrong work loses them (the comparison above, made to fail)."""
    stock, ours, _ = graded
    for question in ("t_names", "t_course", "t_pandas", "t_types"):
        assert ours["right"][question] == stock["right"][question] > 0, question
        assert ours["wrong"][question] == stock["wrong"][question] == 0, question
    assert ours["right"]["t_warns"] == stock["right"]["t_warns"] == 0, "numpy warns on the mean of nothing: stderr"
    assert ours["half"]["t_pandas"] == 0


def test_objects_that_lie_fool_stock_nbgrader_and_earn_nothing_here(graded) -> None:
    stock, ours, _ = graded
    for question in ("t_list", "t_helper", "t_mixed"):
        assert ours["liar"][question] == 0, question
    assert stock["liar"]["t_list"] == 2, "control: stock nbgrader's == trusts the student's object"


def test_feedback_explains_a_zero_for_stderr_and_the_submission_is_flagged(graded) -> None:
    _, ours, root = graded
    assert ours["right"]["flagged"] == 1.0
    nb = nbformat.read(root / "autograded" / "right" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "t_noisy")
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "wrote to stderr" in text and "✓ the hidden tests passed" not in text


def test_a_hidden_test_the_judge_cannot_run_is_refused_when_the_quiz_is_generated(tmp_path: Path) -> None:
    from ketamine_course.grading.config import grading_config
    from ketamine_course.grading.run import _api, _quiet_nbgrader

    root = _course(tmp_path)
    nb = nbformat.read(root / "source" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    nb.cells.append(_test("t_globals", "", "assert 'answer_list' in globals()", 1))
    nbformat.write(nb, root / "source" / QUIZ / f"{QUIZ}.ipynb")
    with _quiet_nbgrader():
        outcome = _api(grading_config(root, f"sqlite:///{root / 'gradebook.db'}")).generate_assignment(QUIZ, force=True)
    assert not outcome["success"]
    assert "t_globals" in (outcome.get("log") or "") + str(outcome.get("error")) and "globals()" in (outcome.get("log") or "") + str(outcome.get("error"))
    shutil.rmtree(root)
