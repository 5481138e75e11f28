"""The grader's own rules, piece by piece (fast): verdicts, inert results, modules by name, Markdown that stays text, the watchdog's walk."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from ketamine_course.grading import hidden
from ketamine_course.grading.adapters.preprocessors import verdict
from ketamine_course.grading.hidden import MODULES, _value, inert
from ketamine_course.grading.sandbox import _tree_usage
from ketamine_course.grading.sanitize import inert_for_markdown, markdown_to_html, sanitize_notebook
from ketamine_course.quiz.wire import Unsupported, decode


def _test_cell(points: int, *outputs: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "q1_test", "points": points, "schema_version": 3}
    cell.outputs = list(outputs)
    return cell


def test_a_result_the_kernel_produced_becomes_a_display_and_earns_nothing_more() -> None:
    forged = nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=3)
    failed = nbformat.v4.new_output("error", ename="QuizCheckFailed", evalue="✗ wrong", traceback=["✗ wrong"])
    made_inert = inert([forged])
    assert [o.output_type for o in made_inert] == ["display_data"] and made_inert[0].data == {"text/plain": "2"}
    assert verdict(_test_cell(2, *made_inert, failed)) == 0, "the judge's failure decides"
    assert verdict(_test_cell(2, forged, failed)) == 2, "control: nbgrader's rule reads the kernel's result as the points"


def test_the_judges_own_partial_credit_counts() -> None:
    partial = nbformat.v4.new_output("execute_result", data={"text/plain": "0.5"}, execution_count=None)
    assert verdict(_test_cell(1, partial)) == 0.5


def test_a_test_cell_without_a_verdict_scores_nothing_and_needs_a_person() -> None:
    assert hidden.verdicts_of({}) == {}
    resources: dict = {}
    hidden.verdicts_of(resources)["q1_test"] = 1.0
    assert resources["ketamine_course"]["verdicts"] == {"q1_test": 1.0}


LIBRARY_ASSERTIONS = [
    "import numpy as np\nnp.testing.assert_allclose(answer_q1, 42.125, rtol=0.01)",
    "import numpy.testing as npt\nnpt.assert_almost_equal(answer_q1, 42.125)",
    "import numpy as np\nnp.testing.assert_array_equal([answer_q1], [42.125])",
    "import pandas as pd\npd.testing.assert_series_equal(pd.Series([answer_q1]), pd.Series([42.125]))",
    "close(answer_q1, 42.125)",  # a helper of the visible part (below), which the student can read
]
VISIBLE_HELPER = "def close(a, b):\n    assert abs(a - b) < 0.01, f'{a} is not {b}'"


@pytest.mark.parametrize("hidden_code", LIBRARY_ASSERTIONS)
def test_an_assertion_a_library_raises_never_shows_the_expected_value(hidden_code: str) -> None:
    """numpy.testing and pandas.testing write both values into their message; the feedback keeps only that they differ."""
    from ketamine_course.grading.adapters.preprocessors import drop_judge_details

    details: list[str] = []
    outputs = hidden.judge_hidden(hidden_code, {"values": {"answer_q1": {"type": "float", "value": 7.75}}}, visible=VISIBLE_HELPER, details=details)
    assert [o.output_type for o in outputs] == ["error"] and outputs[0].ename == "AssertionError"
    assert "42.1" in details[0], "control: the author's check is told in full"
    cell = _test_cell(2, *outputs)
    cell.metadata["ketamine_course"] = {hidden.DETAIL: details[0]}
    nbformat.validate(nbformat.v4.new_notebook(cells=[cell]))
    shown = repr(drop_judge_details(nbformat.v4.new_notebook(cells=[cell])).cells[0])
    assert "42.1" not in shown and "the values it compared differ" in shown, shown
    assert verdict(_test_cell(2, *outputs)) == 0


def test_the_hidden_test_s_own_assertion_message_is_shown() -> None:
    """Control: the message an instructor wrote in the hidden test reaches the student."""
    outputs = hidden.judge_hidden("assert answer_q1 > 10, 'check the unit: mg, not g'", {"values": {"answer_q1": {"type": "float", "value": 7.75}}})
    assert outputs[0].evalue == "✗ a hidden test failed: check the unit: mg, not g"


@pytest.mark.parametrize("name", ["numpy.f2py.__main__", "this", "antigravity", "os", "ketamine_course.grading.cli", "numpy.f2py", "scipy.io"])
def test_a_module_named_by_the_kernel_is_not_imported(name: str) -> None:
    import sys

    before = set(sys.modules)
    assert isinstance(_value("answer", {"type": "module", "name": name}, None), Unsupported)
    assert name not in set(sys.modules) - before


def _frame(columns: int, rows: int, column: object) -> dict:
    return {"type": "frame", "columns": {"type": "ndarray", "dtype": "int64", "shape": [columns], "data": list(range(columns))},
            "index": {"type": "ndarray", "dtype": "int8", "shape": [rows], "data": [0] * rows}, "data": [column] * columns}


@pytest.mark.parametrize("column", [{}, {"type": "int", "value": 1}, {"type": "dict", "items": []}], ids=["empty", "scalar", "dict"])
def test_a_record_never_rebuilds_larger_than_it_is(column: object) -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        rebuilt = decode(_frame(2000, 20_000, column))  # would be 40 million cells, spread by pandas
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(rebuilt, Unsupported) and peak_bytes < 50_000_000, peak_bytes


def test_an_honest_frame_and_series_still_rebuild() -> None:
    import pandas

    from ketamine_course.quiz.wire import encode

    frame = pandas.DataFrame({"drug": ["ketamine", "esketamine"], "dose_mg_per_kg": [0.5, 0.2]}, index=[3, 4])
    pandas.testing.assert_frame_equal(decode(encode(frame)), frame)
    pandas.testing.assert_series_equal(decode(encode(frame["drug"])), frame["drug"])


@pytest.mark.parametrize("record", [
    {"type": "ndarray", "dtype": "uint8", "shape": [1], "data": [-1]},
    {"type": "ndarray", "dtype": "int64", "shape": [1], "data": [10 ** 30]},
    {"type": "series", "index": {"type": "list", "items": []}, "values": {"type": "int", "value": 1}},
    {"type": "frame", "index": {"type": "int", "value": 3}, "columns": {"type": "list", "items": []}, "data": []},
    {"type": "frame", "index": {"type": "list", "items": []}, "columns": {"type": "list", "items": []}, "data": 7},
    {"type": "series", "name": {"type": "none"}, "index": {"type": "ndarray", "dtype": "float16", "shape": [1], "data": [1.0]},
     "values": {"type": "list", "items": [{"type": "int", "value": 1}]}},
    {"type": "frame", "columns": {"type": "ndarray", "dtype": "float16", "shape": [1], "data": [1.0]},
     "index": {"type": "list", "items": [{"type": "int", "value": 0}]}, "data": [{"type": "list", "items": [{"type": "int", "value": 1}]}]},
], ids=["uint8 -1", "int64 overflow", "series of a scalar", "index a scalar", "data not a list", "float16 index", "float16 columns"])
def test_a_malformed_record_is_unsupported_never_an_error(record: dict) -> None:
    assert isinstance(decode(record), Unsupported)


@pytest.mark.parametrize("kind", ["set", "frozenset", "dict"])
def test_numbers_with_one_hash_are_refused_in_linear_time(kind: str) -> None:
    import time

    numbers = [{"type": "int", "value": j * (2**61 - 1)} for j in range(1, 20_001)]  # all hash to 0: quadratic to insert
    record = {"type": kind, "items": [[n, {"type": "none"}] for n in numbers] if kind == "dict" else numbers}
    start = time.perf_counter()
    assert isinstance(decode(record), Unsupported)
    # a sanity bound, not a speed target: this takes about 0.01-0.02 s, and inserting the 20 000 colliding numbers one by one
    # (quadratic) takes seconds, so 1 s is 50x the typical time and still tells the two apart on a busy machine
    assert time.perf_counter() - start < 1.0
    honest = {"type": kind, "items": [[{"type": "int", "value": j}, {"type": "none"}] for j in range(20_000)] if kind == "dict"
              else [{"type": "int", "value": j} for j in range(20_000)]}
    assert len(decode(honest)) == 20_000


def test_the_modules_a_hidden_test_may_use_arrive_as_the_graders_own() -> None:
    import math

    import numpy

    assert _value("np", {"type": "module", "name": "numpy"}, None) is numpy
    assert _value("m", {"type": "module", "name": "math"}, None) is math
    assert "numpy" in MODULES


@pytest.mark.parametrize("dtype", ["object", "O", "<U5", "V8", "datetime64", "i4,f8", "float64; import os"])
def test_an_array_of_a_type_the_grader_does_not_name_is_unsupported(dtype: str) -> None:
    assert isinstance(decode({"type": "ndarray", "dtype": dtype, "shape": [1], "data": [1]}), Unsupported)


@pytest.mark.parametrize("source", [
    "<script>x</script>[click](javascript:alert(1))",
    "<style>p{}</style>[a](JaVaScRiPt:alert(1)) <javascript:alert(1)>",
    "<iframe></iframe>\n\n[d](data:text/html;base64,PHNjcmlwdD4=)",
    # a link inside an attribute that a blank line splits, once the viewer reads the tag as text
    '<?a>\n<span title="a\n\n[Show the full answer](javascript:alert(document.cookie))">t</span>\n?>',
    '<img alt="x\n\n[y](javascript:alert(1))\n\n<javascript:alert(2)>" src="data:,">',
    '<a href="https://example.org" title="\n\n[z](vbscript:x)">ok</a>',
], ids=["script", "style", "iframe", "attribute split", "alt split", "title split"])
def test_student_markdown_stays_text_when_a_viewer_renders_it_again(source: str) -> None:
    """The formgrader renders a graded notebook's Markdown cells once more, with nbconvert's Markdown renderer."""
    from nbconvert.filters.markdown import markdown2html_mistune

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)])
    again = markdown2html_mistune(sanitize_notebook(nb).cells[0].source)
    assert not ACTIVE_LINK.search(again), again


@pytest.mark.parametrize("source", [
    '<?a>\n<span title="a\n\nb">t</span><i title="z">t</i> [link](javascript:alert(1))\n?>',
    '<?a>\n<span title="a\n\n[Show](javascript:alert(document.cookie))">t</span>\n?> $x^2$',
    "<script>x</script>[click](javascript:alert(1)) $\\frac{1}{2}$",
], ids=["raw quote", "attribute split", "beside math"])
def test_student_markdown_stays_text_on_the_feedback_page(source: str) -> None:
    """Feedback: the graded notebook is cleaned again and its mathematics made MathML, then the exporter renders Markdown."""
    from nbconvert.filters.markdown import markdown2html_mistune

    from ketamine_course.grading.adapters.preprocessors import RenderMathOffline

    nb = sanitize_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)]))
    nb, _ = RenderMathOffline().preprocess(nb, {})
    again = markdown2html_mistune(nb.cells[0].source)
    assert not ACTIVE_LINK.search(again), again


def test_mathjax_never_reads_student_content() -> None:
    """MathJax reads text, not markup: TeX split by a tag or written with entities is TeX to it (``\\href{javascript:...}``)."""
    from bs4 import BeautifulSoup
    from nbconvert.filters.markdown import markdown2html_mistune

    tex = "&#36;\\hr<wbr>ef{javascript:alert(1)}{x}&#36;\n\n$$\\href{javascript:alert(2)}{y}$$"
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": tex}), nbformat.v4.new_output("display_data", data={"text/markdown": tex})]
    nb = sanitize_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(tex), cell]))
    shown = [markdown2html_mistune(nb.cells[0].source)] + [o.data["text/html"] for o in nb.cells[1].outputs]  # as the formgrader shows them
    for markup in shown:
        page = BeautifulSoup(markup, "html.parser")
        found = page.find_all(string=re.compile("javascript"))
        assert found, markup  # the TeX is still there, as text
        for text in found:
            assert text.find_parent(class_="tex2jax_ignore") is not None, markup


ACTIVE_LINK = re.compile(r"""href\s*=\s*["']?\s*(javascript|vbscript|data):""", re.I)


def test_control_without_the_entities_the_text_becomes_an_active_link() -> None:
    from nbconvert.filters.markdown import markdown2html_mistune

    assert ACTIVE_LINK.search(markdown2html_mistune(markdown_to_html("<script>x</script>[click](javascript:alert(1))")))


def test_inert_markdown_shows_the_same_text() -> None:
    from nbconvert.filters.markdown import markdown2html_mistune

    html = markdown_to_html("Dose: *0.5* mg/kg [see](https://example.org) (IV)")
    assert inert_for_markdown(html).count("<a ") == html.count("<a ")
    rendered = markdown2html_mistune(inert_for_markdown(html))
    assert "Dose:" in rendered.replace("&#58;", ":") and "(IV)" in rendered.replace("&#40;", "(").replace("&#41;", ")")


def test_the_watchdog_counts_a_tree_without_following_a_link_or_changing_anything_outside(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "instructor"
    outside.mkdir(mode=0o700)
    (outside / "notes.txt").write_text("x" * 5000)
    work.mkdir()
    (work / "a.bin").write_bytes(b"x" * 10_000)
    hidden_folder = work / "hidden"
    hidden_folder.mkdir()
    (hidden_folder / "b.bin").write_bytes(b"x" * 20_000)
    hidden_folder.chmod(0o300)  # the kernel made it unreadable
    (work / "link").symlink_to(outside, target_is_directory=True)
    outside.chmod(0o300)
    size, entries = _tree_usage(work, 10_000)
    assert size >= 30_000 and entries == 4  # a.bin, hidden, hidden/b.bin, link (counted, never entered)
    assert os.stat(outside).st_mode & 0o777 == 0o300, "nothing through the link was touched"
    if os.geteuid() != 0:  # root reads it as it is; a normal user's grader makes it readable, through the folder's own handle
        assert os.stat(hidden_folder).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("record", [
    {"type": "range", "items": [{"type": "int", "value": 0}, {"type": "int", "value": 10**18}, {"type": "int", "value": 1}]},
    {"type": "series", "name": {"type": "none"}, "values": {"type": "ndarray", "dtype": "int64", "shape": [0], "data": []},
     "index": {"type": "rangeindex", "start": 0, "stop": 10**15, "step": 1, "names": [{"type": "none"}]}},
    {"type": "index", "names": [{"type": "none"}], "values": {"type": "strings", "storage": "python", "na": "nan", "data": [1]}},
    {"type": "timestamp", "unit": "ns", "value": 0, "tz": "../../etc/passwd"},
    {"type": "namedtuple", "class": "X", "fields": ["_a"], "items": [{"type": "none"}]},
    {"type": "npscalar", "dtype": "object", "value": {"type": "int", "value": 1}},
], ids=["long range", "long RangeIndex", "strings that are not", "time zone path", "private field", "object scalar"])
def test_a_description_that_would_grow_or_reach_outside_is_unsupported(record: dict) -> None:
    assert isinstance(decode(record), Unsupported)


def test_every_kind_of_value_rebuilds_as_itself() -> None:
    """Each kind the grader rebuilds compares with the original as it would in the student's kernel."""
    import collections
    import dataclasses
    import datetime
    import decimal
    import fractions

    import numpy as np
    import pandas as pd

    from ketamine_course.quiz.values import StudentObject, encode

    @dataclasses.dataclass
    class Patient:
        weight_kg: float

    frames = [
        pd.DataFrame({"a": pd.Categorical(["x", "y"], ordered=True), "b": pd.array([1, None], dtype="Int64"),
                      "c": pd.array(["p", None], dtype="string"), "d": pd.to_datetime(["2020-01-01", "2021-01-01"]).tz_localize("Europe/Paris"),
                      "e": pd.to_timedelta([1, 2], unit="h"), "f": [1 + 1j, 2j], "g": [decimal.Decimal("1"), None]},
                     index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])).rename_axis(columns="col"),
        pd.DataFrame({"v": [1.5, 2.5]}, index=pd.RangeIndex(10, 14, 2, name="r")),
    ]
    for frame in frames:
        pd.testing.assert_frame_equal(decode(encode(frame)), frame)
    series = pd.Series([1.0, np.nan], index=pd.date_range("2020-01-01", periods=2, freq="D"), name="s")
    pd.testing.assert_series_equal(decode(encode(series)), series)
    pd.testing.assert_index_equal(decode(encode(frames[0].index)), frames[0].index)
    Dose = collections.namedtuple("Dose", ["mg", "route"])
    plain = [1 + 2j, b"\x00ok", decimal.Decimal("0.10"), fractions.Fraction(2, 3), datetime.datetime(2020, 1, 1, 12, tzinfo=datetime.UTC),
             datetime.time(8, 30), datetime.timedelta(hours=36), range(0, 10, 2), slice(1, None), ..., Dose(35.0, "iv"),
             pd.Timestamp("2020-01-01", tz="UTC"), pd.Timedelta("1h"), np.datetime64("2020-01-01T10:00"), np.str_("x"), np.complex64(1j)]
    for value in plain:
        rebuilt = decode(encode(value))
        assert rebuilt == value and type(rebuilt).__name__ == type(value).__name__, (value, rebuilt)
    assert decode(encode(pd.NaT)) is pd.NaT and decode(encode(pd.NA)) is pd.NA
    for array in (np.array([["a", "bc"]]), np.array([1 + 1j]), np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([[1, "x"]], dtype=object)):
        rebuilt = decode(encode(array))
        assert rebuilt.dtype.kind == array.dtype.kind and rebuilt.shape == array.shape and (rebuilt == array).all()
    patient = decode(encode(Patient(70.0)))
    assert isinstance(patient, StudentObject) and patient.weight_kg == 70.0 and patient == decode(encode(Patient(70.0)))
    assert patient != decode(encode(Patient(71.0))) and patient != 70.0
