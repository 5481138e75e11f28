"""Hostile submissions, built from the release notebooks, graded in the sandbox.

Each hostile student leaves every answer blank or wrong and tries to earn points
or do damage another way. All are graded in one batch; the batch must finish,
no hostile student may earn a point, nothing outside each submission's folder
may change, and honest students must get the same grades with and without
isolation. One control shows the exploit works without the sandbox, so these
tests can fail.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import sandbox_or_skip
from grading_helpers import ROOT, make_course, solutions, submission, submit, tree_digest, wrong
from ketamine_course.grading import grade_class
from ketamine_course.grading.protocol import RECORD_MARKER

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"


def _hostile(code: str) -> dict[str, str]:
    """Blank answers everywhere, with the hostile code as the first answer cell."""
    return {"q1_answer": textwrap.dedent(code)}


def _observe(name: str, expression: str) -> str:
    """Code that records what an attempt achieved into observations.json in the working folder."""
    return textwrap.dedent(
        f"""
        import json as _json
        try:
            _result = repr({expression})[:200]
        except BaseException as _error:
            _result = "blocked: " + type(_error).__name__
        try:
            _seen = _json.load(open("observations.json"))
        except Exception:
            _seen = {{}}
        _seen[{name!r}] = _result
        _json.dump(_seen, open("observations.json", "w"))
        """
    )


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    sandbox_or_skip()
    tmp = tmp_path_factory.mktemp("hostile")
    course = make_course(tmp, QUIZ)
    instructor_home = tmp / "instructor_home"
    instructor_home.mkdir()
    (instructor_home / "secrets.txt").write_text("instructor's notes")
    (course / "canary.txt").write_text("untouched")
    source_nb = course / "source" / QUIZ / f"{QUIZ}.ipynb"

    # A listener on the host's loopback: a sandboxed kernel must not reach it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, address = listener.accept()
                connections.append(str(address))
                connection.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    read_solutions = f"""
    import json
    for _path in ["../../../source/{QUIZ}/{QUIZ}.ipynb", {str(source_nb)!r}]:
        try:
            _nb = json.load(open(_path))
        except Exception:
            continue
        for _cell in _nb["cells"]:
            if _cell["metadata"].get("nbgrader", {{}}).get("solution"):
                exec("".join(_cell["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""), globals())
        break
    """
    always_equal = """
    class Anything(str):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
    class AnyNumber(float):
        def __eq__(self, other): return True
        def __sub__(self, other): return 0.0
        def __rsub__(self, other): return 0.0
        def __abs__(self): return 0.0
    answer_q1 = answer_q2 = answer_q4 = answer_q5 = answer_q6 = Anything("Z")
    answer_q3 = AnyNumber(-1)
    """
    students = {
        "read_source": {grade_id: textwrap.dedent(read_solutions) for grade_id in solutions(QUIZ)},
        "read_gradebook": _hostile(_observe("gradebook", f"open({str(course / 'gradebook.db')!r}, 'rb').read(64)")),
        "read_home": _hostile(_observe("home", f"open({str(instructor_home / 'secrets.txt')!r}).read()")),
        "write_outside": _hostile(
            _observe("course", f"open({str(course / 'hacked.txt')!r}, 'w').write('x')")
            + _observe("parent", "open('../../hacked.txt', 'w').write('x')")
            + _observe("canary", f"open({str(course / 'canary.txt')!r}, 'w').write('changed')")
            + _observe("source", f"open({str(source_nb)!r}, 'w').write('{{}}')")
            + _observe("tmp", f"open({str(tmp / 'hacked.txt')!r}, 'w').write('x')")
        ),
        "network": _hostile(
            _observe("loopback", f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=2)")
            + _observe("internet", "__import__('socket').create_connection(('1.1.1.1', 53), timeout=2)")
        ),
        "fork_bomb": _hostile(
            """
            import os, time
            _children = 0
            for _ in range(300):
                try:
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    _children += 1
                except OSError:
                    break
            """
            + _observe("children", "_children")
        ),
        "memory": _hostile("_hoard = []\nwhile True:\n    _hoard.append(bytearray(100 * 1024 * 1024))"),
        "print_megabytes": _hostile("for _ in range(50):\n    print('x' * 1_000_000)"),
        "loop_every_cell": {grade_id: "while True:\n    pass" for grade_id in solutions(QUIZ)},
        "sys_exit": _hostile("import sys\nsys.exit(0)"),
        "os_exit": _hostile("import os\nos._exit(0)"),
        "redefine_builtins": _hostile(
            """
            import builtins
            builtins.isinstance = lambda *a: True
            builtins.type = lambda *a: str
            builtins.abs = lambda x: 0
            builtins.AssertionError = type("Nothing", (Exception,), {})
            answer_q1 = answer_q2 = answer_q4 = answer_q5 = answer_q6 = "Z"
            answer_q3 = -1
            """
        ),
        "always_equal": _hostile(always_equal),
        "monkeypatch_package": _hostile(
            f"""
            import json, ketamine_course.quiz as q, ketamine_course.grading.protocol as p
            for _name in ("grade_choice", "grade_number", "grade_function", "check_choice", "check_number", "check_function"):
                setattr(q, _name, lambda *a, **k: None)
            p.record_answers = lambda grade_id, names, calls: print({RECORD_MARKER!r} + json.dumps(dict(grade_id=grade_id, values={{n: dict(type="str", value="A") for n in names}}, calls={{}})))
            """
        ),
        "fake_record": _hostile(
            f"""
            import json
            for _i in range(1, 8):
                print({RECORD_MARKER!r} + json.dumps(dict(grade_id=f"q{{_i}}_test", values=dict(), calls=dict())))
            """
        ),
    }
    honest = {"correct": solutions(QUIZ), "wrong_q3": {**solutions(QUIZ), "q3_answer": wrong(solutions(QUIZ)["q3_answer"])}}
    for name, answers in {**students, **honest}.items():
        submit(course, QUIZ, name, submission(QUIZ, answers))

    before = {"source": tree_digest(course / "source"), "release": tree_digest(course / "release"), "home": tree_digest(instructor_home)}
    start = time.perf_counter()
    db = f"sqlite:///{course / 'gradebook.db'}"
    results = {r.student_id: r for r in grade_class(course, QUIZ, timeout_s=5, notebook_timeout_s=15, progress=None, db_url=db)}
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    listener.close()
    after = {"source": tree_digest(course / "source"), "release": tree_digest(course / "release"), "home": tree_digest(instructor_home)}
    return dict(course=course, tmp=tmp, results=results, students=students, elapsed=elapsed, before=before, after=after, connections=connections)


def _observations(course: Path, student: str) -> dict[str, str]:
    path = course / "autograded" / student / QUIZ / "observations.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_the_batch_finishes_and_no_hostile_submission_earns_a_point(hostile_class) -> None:
    results = hostile_class["results"]
    assert set(hostile_class["students"]) <= set(results)
    for name in hostile_class["students"]:
        assert results[name].score == 0, (name, results[name].messages, results[name].error)
        assert results[name].error is None, (name, results[name].error)
    assert results["correct"].score == results["correct"].max_score
    # 15+ submissions, one of which loops in every cell: bounded by the per-notebook limit, not cells x timeout
    assert results["loop_every_cell"].seconds < 30
    assert hostile_class["elapsed"] < 300


def test_hostile_code_cannot_read_the_grader_s_files(hostile_class) -> None:
    course = hostile_class["course"]
    assert _observations(course, "read_gradebook")["gradebook"].startswith("blocked")
    assert _observations(course, "read_home")["home"].startswith("blocked")


def test_nothing_outside_the_submission_changes(hostile_class) -> None:
    course, tmp = hostile_class["course"], hostile_class["tmp"]
    seen = _observations(course, "write_outside")
    assert all(v.startswith("blocked") for k, v in seen.items() if k != "parent"), seen
    assert not (course / "hacked.txt").exists() and not (tmp / "hacked.txt").exists()
    assert not (course / "autograded" / "hacked.txt").exists() and not (course / "hacked.txt").exists()
    assert (course / "canary.txt").read_text() == "untouched"
    assert hostile_class["before"] == hostile_class["after"]


def test_no_network_from_the_kernel(hostile_class) -> None:
    seen = _observations(hostile_class["course"], "network")
    assert seen["loopback"].startswith("blocked") and seen["internet"].startswith("blocked"), seen
    assert hostile_class["connections"] == []


def test_resource_limits_hold(hostile_class) -> None:
    course, results = hostile_class["course"], hostile_class["results"]
    children = int(_observations(course, "fork_bomb").get("children", "0"))
    assert children < 64, "the process limit stops a fork bomb"
    assert results["memory"].error is None
    printed = (course / "autograded" / "print_megabytes" / QUIZ / f"{QUIZ}.ipynb").stat().st_size
    assert printed < 3_000_000, "output is capped"


def test_exits_stop_only_that_submission(hostile_class) -> None:
    results = hostile_class["results"]
    for name in ("sys_exit", "os_exit"):
        assert results[name].score == 0
    assert results["wrong_q3"].score == results["correct"].max_score - 2


def test_the_exploit_works_without_the_sandbox(tmp_path: Path) -> None:
    """Control: unsandboxed, reading source/ scores full marks, which is what the sandbox prevents."""
    course = make_course(tmp_path, QUIZ)
    exploit = f"""
import json
_nb = json.load(open({str(course / 'source' / QUIZ / f'{QUIZ}.ipynb')!r}))
for _cell in _nb["cells"]:
    if _cell["metadata"].get("nbgrader", {{}}).get("solution"):
        exec("".join(_cell["source"]), globals())
"""
    # in every answer cell, so that no blank answer cell undoes it
    submit(course, QUIZ, "exploit", submission(QUIZ, {grade_id: exploit for grade_id in solutions(QUIZ)}))
    (result,) = grade_class(course, QUIZ, ["exploit"], progress=None, sandbox=False, db_url=f"sqlite:///{course / 'gradebook.db'}")
    assert result.score == result.max_score


def test_honest_grades_are_identical_with_and_without_isolation(tmp_path: Path) -> None:
    sandbox_or_skip()
    course = make_course(tmp_path, QUIZ)
    right = solutions(QUIZ)
    for name, answers in {"correct": right, "wrong_q1": {**right, "q1_answer": wrong(right["q1_answer"])}, "blank": {}}.items():
        submit(course, QUIZ, name, submission(QUIZ, answers))
    db = f"sqlite:///{course / 'gradebook.db'}"
    isolated = {r.student_id: r.questions for r in grade_class(course, QUIZ, progress=None, sandbox=True, db_url=db)}
    open_ = {r.student_id: r.questions for r in grade_class(course, QUIZ, progress=None, sandbox=False, db_url=db)}
    assert isolated == open_


def test_grading_refuses_without_the_sandbox_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ketamine_course.grading import sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="bwrap, prlimit, setpriv not found.*apt-get install bubblewrap.*--unsandboxed"):
        grade_class(tmp_path, QUIZ, ["nobody"], progress=None)


def test_self_grading_runs_without_bubblewrap_because_the_code_is_the_learner_s_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Binder has no bubblewrap: a learner grading their own quiz falls back to an unsandboxed kernel."""
    from ketamine_course.grading import sandbox
    from ketamine_course.grading import self_grade

    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None)
    notebook = tmp_path / f"{QUIZ}.ipynb"
    import nbformat

    nbformat.write(submission(QUIZ, solutions(QUIZ)), notebook)
    result = self_grade(QUIZ, notebook, course_root=ROOT, feedback_dir=tmp_path / "feedback")
    assert result.grade.score == result.grade.max_score
    assert result.feedback_html.is_file()
