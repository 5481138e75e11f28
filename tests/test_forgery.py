"""A grade only the grader can give: hostile students against both of the instructor's commands.

Every student here answers every question wrongly and tries another way to
score, to read the grader's secrets, or to hold up the class:

* forging the score through what the kernel outputs: the recorder that stands
  in for a hidden test made to return the cell's points, the display hook
  called after every cell, a thread publishing results while test cells run;
* reading the grader's environment and command line (an instructor's hub
  token) through ``/proc``;
* nested namespaces, writing outside the sized folders (``/``, ``/dev``),
  and disk hidden in ``/tmp`` beside the working folder;
* making the grader import a module by name (one that exits on import);
* a function whose calls from the hidden tests would outlast the notebook's
  time limit;
* a ``timestamp.txt`` of megabytes;
* cells given another role in their nbgrader metadata (an answer cell marked
  as a test worth 50 points, a test cell turned into an answer cell, cells
  marked as tasks);
* a forged answer record that the grader would rebuild as gigabytes (a frame
  whose columns pandas would spread over a long index), and one whose value
  does not fit its array type (it may fail its own question only);
* terminal control sequences (clear the screen, set the window title, hide a
  line) in what the kernel writes, in an error and in a cell's grade id, so
  that the instructor's terminal would show something else.

The class is graded as commands, ``ketamine-grade class --jobs 2`` and
``nbgrader autograde``, with a secret in the grader's environment. Both runs
must give every hostile student 0, finish in bounded time, never show the
secret, and leave no kernel running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, make_course, question_points, solutions, submission, submit, wrong
from ketamine_course.grading.config import COURSE_ID

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # portable: CI runs these on every supported Python
QUIZ = "quiz01_history"
BIN = Path(sys.executable).parent
SECRET = "hub-token-5ba1e6c0ffee"
OBSERVED = "OBSERVED "
NOTEBOOK_TIMEOUT_S = 30


def _observe(name: str, expression: str) -> str:
    return textwrap.dedent(
        f"""
        try:
            _result = repr({expression})[:2000]
        except BaseException as _error:
            _result = "blocked: " + type(_error).__name__ + ": " + str(_error)[:200]
        print({OBSERVED!r} + __import__("json").dumps({{{name!r}: _result}}))
        """
    )


def _wrong_everywhere(attack: str) -> dict[str, str]:
    """Every answer wrong, with the attack run first (in the first answer cell)."""
    answers = {grade_id: wrong(code) for grade_id, code in solutions(QUIZ).items()}
    answers["q1_answer"] = textwrap.dedent(attack) + "\n" + answers["q1_answer"]
    return answers


FORGE_RECORDER = """
import ketamine_course.quiz.wire as _protocol, sys as _sys
_POINTS = {points}
def _forged(grade_id, names, calls=None):
    namespace = _sys._getframe(1).f_globals
    _protocol._emit({"grade_id": grade_id, "values": {n: _protocol.encode(namespace.get(n, _protocol.MISSING)) for n in names}})
    points = _POINTS[grade_id.split("_")[0]]
    get_ipython().displayhook(points)  # a result in the test cell: nbgrader reads the first one as the cell's points
    return points
_protocol.record_answers = _forged
""".replace("{points}", repr(question_points(QUIZ)))
FORGE_DISPLAYHOOK = """
_ip = get_ipython()
_ip.events.register("post_run_cell", lambda result: _ip.displayhook(1))
"""
FORGE_THREAD = """
import threading as _threading, time as _time
_ip = get_ipython()
def _flood():
    for _ in range(3000):
        _ip.displayhook(1)
        _time.sleep(0.002)
_threading.Thread(target=_flood, daemon=True).start()
"""
READ_THE_GRADER = (
    _observe("pid1_environ", "open('/proc/1/environ', 'rb').read()")
    + _observe("pid1_cmdline", "open('/proc/1/cmdline', 'rb').read()")
    + _observe("environ", "dict(__import__('os').environ)")
    + textwrap.dedent("""
    import os as _os
    _seen = []
    for _pid in _os.listdir('/proc'):
        for _part in ('environ', 'cmdline'):
            try:
                _seen.append(open(f'/proc/{_pid}/{_part}', 'rb').read().decode('latin-1'))
            except (OSError, ValueError):
                pass
    """)
    + _observe("all_proc", "[s for s in _seen if 'TOKEN' in s or 'SECRET' in s or 'ketamine' in s.lower()]")
)
NAMESPACES_AND_WRITES = (
    "import ctypes as _ctypes, subprocess as _subprocess\n_libc = _ctypes.CDLL(None, use_errno=True)\n"
    + _observe("unshare_user", "(_libc.unshare(0x10000000), _ctypes.get_errno())")
    + _observe("unshare_command", "_subprocess.run(['unshare', '-Ur', 'id'], capture_output=True, text=True)")
    + _observe("write_root", "open('/big', 'wb').write(b'x' * 1_000_000)")
    + _observe("write_dev", "open('/dev/big', 'wb').write(b'x' * 1_000_000)")
    + _observe("ptrace", "(_libc.ptrace(16, 1, 0, 0), _ctypes.get_errno())")
)
DISK_IN_TMP = """
for _name in ('/tmp/a', '/tmp/b', 'c', 'd'):  # 60 MB each (a file may hold 64 MB): 120 MB in /tmp, 120 MB in the working folder
    with open(_name, 'wb') as _f:
        for _ in range(60):
            _f.write(b'x' * 1024 * 1024)
__import__('time').sleep(3)
"""
MODULE_BY_NAME = """
import types as _types
answer_q1 = answer_q2 = answer_q4 = answer_q5 = answer_q6 = _types.ModuleType("numpy.f2py.__main__")
answer_q3 = _types.ModuleType("this")
"""
ESCAPES = "\\x1b[2J\\x1b]2;all graded\\x07\\x1b[8m"  # clear the screen, retitle the window, hide what follows
TERMINAL_ESCAPES = f"""
import sys as _sys
print("{ESCAPES}", file=_sys.stderr)
print("{ESCAPES}")
raise RuntimeError("{ESCAPES}")
"""
FORGE_RECORD = """
import ketamine_course.quiz.wire as _protocol, json as _json, sys as _sys
_PAYLOAD = {payload}
def _forged(grade_id, names, calls=None):
    if grade_id == "q1_test":
        print(_protocol.RECORD_MARKER + _json.dumps({"grade_id": grade_id, "values": {"answer_q1": _PAYLOAD}}))
        return
    namespace = _sys._getframe(1).f_globals
    _protocol._emit({"grade_id": grade_id, "values": {n: _protocol.encode(namespace.get(n, _protocol.MISSING)) for n in names}})
_protocol.record_answers = _forged
"""
HUGE_FRAME = FORGE_RECORD.replace("{payload}", repr({  # 0.4 MB of record; 2000 x 200 000 cells (3.2 GB) if spread
    "type": "frame", "columns": {"type": "ndarray", "dtype": "int64", "shape": [2000], "data": list(range(2000))},
    "index": {"type": "ndarray", "dtype": "int8", "shape": [200_000], "data": [0] * 200_000}, "data": [{}] * 2000}))
OUT_OF_RANGE = FORGE_RECORD.replace("{payload}", repr({"type": "ndarray", "dtype": "uint8", "shape": [1], "data": [-1]}))
SLOW_FUNCTION = """
def years_between(first_event, later_event):
    import time
    time.sleep(20)
    return 0
"""

STUDENTS = {
    "forge_recorder": _wrong_everywhere(FORGE_RECORDER),
    "forge_displayhook": _wrong_everywhere(FORGE_DISPLAYHOOK),
    "forge_thread": _wrong_everywhere(FORGE_THREAD),
    "read_the_grader": _wrong_everywhere(READ_THE_GRADER),
    "namespaces_and_writes": _wrong_everywhere(NAMESPACES_AND_WRITES),
    "disk_in_tmp": _wrong_everywhere(DISK_IN_TMP),
    "module_by_name": {**_wrong_everywhere(""), "q1_answer": MODULE_BY_NAME},
    "huge_frame": _wrong_everywhere(HUGE_FRAME),
}


@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory: pytest.TempPathFactory, sandbox: bool) -> Path:
    if not sandbox:
        pytest.skip("the instructor's commands refuse to grade without the sandbox")
    course = make_course(tmp_path_factory.mktemp("forgery"), QUIZ)
    for name, answers in STUDENTS.items():
        submit(course, QUIZ, name, submission(QUIZ, answers))
    slow = {k: v for k, v in solutions(QUIZ).items() if k != "q7_answer"} | {"q7_answer": SLOW_FUNCTION}
    submit(course, QUIZ, "slow_function", submission(QUIZ, slow))
    submit(course, QUIZ, "honest", submission(QUIZ, solutions(QUIZ)))
    right_but_q1 = solutions(QUIZ) | {"q1_answer": OUT_OF_RANGE + "\n" + solutions(QUIZ)["q1_answer"]}
    submit(course, QUIZ, "out_of_range", submission(QUIZ, right_but_q1))
    recast = submission(QUIZ, solutions(QUIZ))
    for cell in recast.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "q1_answer":
            meta.update(grade=True, points=50)
        if meta.get("grade_id") == "q2_test":
            meta.update(grade=False, solution=True, locked=False)
            meta.pop("points")
        if meta.get("grade_id") in ("intro", "q3_test", "q4_answer"):
            meta["task"] = True  # nbgrader's task cells must be Markdown: it stopped grading the notebook
    submit(course, QUIZ, "recast_cells", recast)
    submit(course, QUIZ, "huge_timestamp", submission(QUIZ, solutions(QUIZ)))
    escapes = submission(QUIZ, _wrong_everywhere(TERMINAL_ESCAPES))
    escaped_id = next(c for c in escapes.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "q2_answer")
    escaped_id.metadata["nbgrader"]["grade_id"] = "q2_answer\x1b[2J\x1b]2;all graded\x07"
    submit(course, QUIZ, "terminal_escapes", escapes)
    (course / "submitted" / "huge_timestamp" / QUIZ / "timestamp.txt").write_text("2026-01-01 00:00:00 " + "0" * 3_000_000)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Execute.timeout = 25\nc.BoundedExecute.notebook_timeout = {NOTEBOOK_TIMEOUT_S}\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    return course


def _graded(hostile_course: Path, where: Path, command: list[str]) -> Iterator[dict]:
    course = where / "course"
    shutil.copytree(hostile_course, course, symlinks=True)
    (course / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text().replace(str(hostile_course), str(course)))
    kernels = Path(tempfile.mkdtemp(prefix="kf", dir="/tmp"))
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(kernels), "JUPYTERHUB_API_TOKEN": SECRET,
                   "KETAMINE_INSTRUCTOR_SECRET": SECRET,
                   # Python 3.12+ warns when a multi-threaded process forks (a possible deadlock in the child): show it if it happens
                   "PYTHONWARNINGS": "always:This process:DeprecationWarning"}
    start = time.monotonic()
    # through a wrapper that reports the largest resident memory of any process of the run (grader, workers, kernels)
    measured = [sys.executable, "-c", "import resource, subprocess, sys\nrun = subprocess.run(sys.argv[1:])\n"
                "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\nsys.exit(run.returncode)", *command]
    run = subprocess.run(measured, cwd=course, env=environment, capture_output=True, text=True, timeout=1800, check=False)
    elapsed = time.monotonic() - start
    time.sleep(1)
    import psutil

    alive = [p.pid for p in psutil.process_iter(["cmdline", "status"])
             if p.info["status"] != psutil.STATUS_ZOMBIE and str(kernels) in " ".join(p.info["cmdline"] or [])]
    yield {"course": course, "run": run, "elapsed": elapsed, "alive": alive}
    shutil.rmtree(kernels, ignore_errors=True)


@pytest.fixture(scope="module", params=["ketamine-grade class --jobs 2", "nbgrader autograde"])
def graded(request: pytest.FixtureRequest, hostile_course: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    command = {"ketamine-grade class --jobs 2": [str(BIN / "ketamine-grade"), "class", QUIZ, "--jobs", "2"],
               "nbgrader autograde": [str(BIN / "nbgrader"), "autograde", QUIZ]}[request.param]
    yield from _graded(hostile_course, tmp_path_factory.mktemp("run"), command)


def _observations(course: Path, student: str) -> dict[str, str]:
    seen: dict[str, str] = {}
    path = course / "autograded" / student / QUIZ / f"{QUIZ}.ipynb"
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                if line.startswith(OBSERVED):
                    seen.update(json.loads(line[len(OBSERVED):]))
    return seen


def _scores(course: Path) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {s.student.id: float(s.score) for s in gradebook.assignment_submissions(QUIZ)}


def test_no_hostile_student_scores_and_the_honest_one_scores_in_full(graded: dict) -> None:
    scores = _scores(graded["course"])
    output = graded["run"].stdout[-3000:] + graded["run"].stderr[-3000:]
    for student in STUDENTS:
        assert scores[student] == 0, (student, scores, output)
    assert scores["honest"] == 10, (scores, output)
    assert scores["slow_function"] == 8, "every answer but the slow function's (2 points) is right"
    assert scores["out_of_range"] == 10 - question_points(QUIZ)["q1"], "a record that fits no array fails its own question only"
    assert scores["recast_cells"] == 10, "cells keep the quiz's roles: no 50-point answer cell, no test cell lost"
    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", COURSE_ID) as gradebook:
        assert gradebook.find_submission_notebook(QUIZ, QUIZ, "recast_cells").flagged, "and the instructor is told"


def test_no_record_makes_the_grader_build_more_than_it_holds(graded: dict) -> None:
    peak_kb = int(re.findall(r"^PEAK_KB (\d+)$", graded["run"].stderr, re.MULTILINE)[-1])
    assert peak_kb < 1_000_000, f"a process of the run held {peak_kb / 1e6:.1f} GB"


def test_the_grader_forks_its_workers_with_no_thread_running(graded: dict) -> None:
    assert "multi-threaded, use of fork()" not in graded["run"].stderr, graded["run"].stderr[-2000:]


def test_the_forged_results_are_shown_but_never_read_as_points(graded: dict) -> None:
    nb = nbformat.read(graded["course"] / "autograded" / "forge_recorder" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert tests and all(o.get("output_type") != "execute_result" for c in tests for o in c.outputs), "the kernel's results became plain displays"


def test_nothing_of_the_grader_is_visible_in_the_cage(graded: dict) -> None:
    seen = _observations(graded["course"], "read_the_grader")
    assert {"pid1_environ", "pid1_cmdline", "environ", "all_proc"} <= set(seen), seen
    for name, value in seen.items():
        assert SECRET not in value, name
        assert str(graded["course"]) not in value, f"{name} shows the course's folder"
    assert "--args" in seen["pid1_cmdline"] or "blocked" in seen["pid1_cmdline"]
    for folder in ("autograded", "feedback"):
        for path in (graded["course"] / folder).rglob("*"):
            if path.is_file():
                assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in graded["run"].stdout + graded["run"].stderr


def test_no_nested_namespace_no_tracing_and_nothing_writable_outside_the_sized_folders(graded: dict) -> None:
    seen = _observations(graded["course"], "namespaces_and_writes")
    assert seen["unshare_user"].startswith("(-1, "), seen
    assert "returncode=0" not in seen["unshare_command"], seen
    assert seen["write_root"].startswith("blocked") and seen["write_dev"].startswith("blocked"), seen
    assert seen["ptrace"].startswith("(-1, "), seen


def test_disk_hidden_in_tmp_counts_towards_the_limit(graded: dict) -> None:
    nb = nbformat.read(graded["course"] / "autograded" / "disk_in_tmp" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "the grader stopped the kernel: it wrote more than 200 MB" in text


def test_a_module_named_by_the_kernel_is_never_imported_and_the_class_goes_on(graded: dict) -> None:
    scores = _scores(graded["course"])
    assert set(STUDENTS) | {"honest", "slow_function"} <= set(scores), "everyone after it was graded"


def test_hidden_calls_of_a_students_function_keep_to_the_notebooks_time_limit(graded: dict) -> None:
    nb = nbformat.read(graded["course"] / "autograded" / "slow_function" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "did not finish in the time the grader allows" in text or "time limit" in text or "kernel stopped" in text, text[-2000:]
    took = re.search(r"slow_function: \S+ in ([\d.]+) s", graded["run"].stdout)  # ketamine-grade's progress line
    if took:
        assert float(took.group(1)) < NOTEBOOK_TIMEOUT_S + 15, took.group(0)
    assert graded["elapsed"] < 9 * 20 + NOTEBOOK_TIMEOUT_S + 60, graded["elapsed"]


def test_a_huge_timestamp_is_refused_before_anything_parses_it(graded: dict) -> None:
    output = graded["run"].stdout + graded["run"].stderr
    assert "timestamp.txt is" in output and "huge_timestamp" in output, output[-3000:]
    assert graded["run"].returncode != 0


def test_no_control_sequence_reaches_the_instructors_terminal(graded: dict) -> None:
    scores = _scores(graded["course"])
    assert scores.get("terminal_escapes", 0) == 0, scores
    output = graded["run"].stdout + graded["run"].stderr
    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output, [line for line in output.splitlines() if "\x1b" in line][:5]
    assert "\\x1b[2J" in output, "the changed grade id reached the terminal, escaped: the attack was tried"


def test_no_kernel_is_left_running(graded: dict) -> None:
    assert graded["alive"] == []


def test_control_the_forgery_scores_where_the_kernels_results_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: bool) -> None:
    """Without making the kernel's results inert, the forging student scores: the attack is real, so the tests above can fail."""
    from ketamine_course.grading import hidden
    from ketamine_course.grading.run import grade_class

    if not sandbox:
        pytest.skip("grading needs the sandbox here")
    monkeypatch.setattr(hidden, "inert", lambda outputs: list(outputs))
    course = make_course(tmp_path, QUIZ)
    submit(course, QUIZ, "forge_recorder", submission(QUIZ, STUDENTS["forge_recorder"]))
    (result,) = grade_class(course, QUIZ, progress=None)
    assert result.score > 0, (result.score, result.error)
