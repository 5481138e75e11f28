"""Hostile students, graded with the instructor's real commands, in the sandbox.

Each hostile student leaves every answer blank or wrong and tries to earn
points or do damage another way: read the key or another student's work from
anywhere the kernel can reach, hand in links, swap files under the grader,
exhaust memory, processes, disk or /tmp, put HTML and JavaScript in every
channel, forge answer records, paste cells, use an id that is HTML. The class
is graded twice, with ``ketamine-grade class`` (:func:`grade_class`) and with
``nbgrader autograde`` + ``nbgrader generate_feedback`` on the command line;
both runs must finish, no hostile student may earn a point, nothing outside
each submission's result may change, refusals must say why, and no kernel,
process or private folder may be left behind. Controls show that the attacks
work without the defences, so these tests can fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest

from conftest import sandbox_or_skip
from grading_helpers import (
    HTML_OUTPUTS,
    ROOT,
    active_content,
    hidden_lines,
    make_course,
    nbgrader_meta,
    notebook_markup,
    release_nb,
    solution_lines,
    solutions,
    submission,
    submit,
    tree_digest,
    with_hostile_cells,
    wrong,
)
from ketamine_course.grading import grade_class
from ketamine_course.grading.config import COURSE_ID
from ketamine_course.quiz.wire import RECORD_MARKER

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"
OBSERVED = "OBSERVED "

def _hostile(code: str) -> dict[str, str]:
    """Blank answers everywhere, with the hostile code as the first answer cell."""
    return {"q1_answer": textwrap.dedent(code)}


def _observe(name: str, expression: str) -> str:
    """Code that prints what an attempt achieved (the grader keeps the kernel's output; its files are gone)."""
    return textwrap.dedent(
        f"""
        try:
            _result = repr({expression})[:300]
        except BaseException as _error:
            _result = "blocked: " + type(_error).__name__
        print({OBSERVED!r} + __import__("json").dumps({{{name!r}: _result}}))
        """
    )


def _observations(course: Path, student: str) -> dict[str, str]:
    """What a hostile student's code printed as observations, read from the graded notebook."""
    path = course / "autograded" / student / QUIZ / f"{QUIZ}.ipynb"
    seen: dict[str, str] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                if line.startswith(OBSERVED):
                    seen.update(json.loads(line[len(OBSERVED):]))
    return seen


def _key_markers() -> tuple[str, ...]:
    """Text only the key holds: the start of each hidden check (up to its hint), each solution line, a gradebook's header."""
    hidden = [re.split(r",\s*(?:,|\))", line)[0] for line in hidden_lines(QUIZ)]
    return (*hidden, *solution_lines(QUIZ), "SQLite format 3")


FIND_THE_KEY = """
import json, os, sys
_markers = MARKERS
_skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix)
_found, _paths = [], []
for _top, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if not os.path.join(_top, d).startswith(_skip)]
    for _name in _files:
        _path = os.path.join(_top, _name)
        _paths.append(_path)
        try:
            with open(_path, "rb") as _f:
                _head = _f.read(5_000_000).decode("utf-8", "replace")
        except Exception:
            continue
        _text = _head.replace('\\"', '"')  # notebooks escape quotes in their JSON
        if any(m in _text for m in _markers):
            _found.append(_path)
            try:  # a notebook with the key: run its solutions
                for _cell in json.loads(_head)["cells"]:
                    _src = "".join(_cell["source"])
                    if "BEGIN SOLUTION" in _src:
                        exec(_src, globals())
            except Exception:
                pass
"""

WALK_THE_HOST = """
import os, sys
_skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix)
_visible = []
for _top, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if not os.path.join(_top, d).startswith(_skip)]
    _visible += [os.path.join(_top, n) for n in _files + _dirs]
"""

SWAP_FILES = """
import os, glob
_made = []
for _target in ["/etc/passwd", "../../submitted", "../quiz01_history.ipynb", "/tmp"]:
    for _name in ["quiz01_history.ipynb", "observations.json", "data.csv", ".."]:
        try:
            if os.path.lexists(_name) and _name != "..":
                os.remove(_name)
            os.symlink(_target, _name)
            _made.append(_name)
        except OSError:
            pass
try:
    os.chmod(".", 0o777)
except OSError:
    pass
"""

def _pasted(nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """An honest student who pasted copies of q2's answer cell and of q3's test cell, and answered in the pasted copy."""
    import copy

    cells = list(nb.cells)
    index = next(i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade_id") == "q2_answer")
    pasted = copy.deepcopy(cells[index])
    pasted.id = "pasted-answer"
    pasted.source = answers["q2_answer"]
    cells.insert(index + 1, pasted)
    test = next(c for c in cells if nbgrader_meta(c).get("grade_id") == "q3_test")
    copy_of_test = copy.deepcopy(test)
    copy_of_test.id = "pasted-test"
    copy_of_test.metadata["nbgrader"] = {}  # what some editors leave on a pasted cell
    cells.append(copy_of_test)
    nb.cells = cells
    return nb


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
    memory_in_four = """
    import os
    _pids = []
    for _ in range(4):
        _pid = os.fork()
        if _pid == 0:
            _block = bytearray(700 * 1024 * 1024)
            for _i in range(0, len(_block), 4096):
                _block[_i] = 1
            os.write(1, b"child held 700 MB\\n")
            __import__("time").sleep(20)
            os._exit(0)
        _pids.append(_pid)
    __import__("time").sleep(3)
    _alive = sum(1 for _pid in _pids if os.waitpid(_pid, os.WNOHANG) == (0, 0))
    """
    students = {
        "read_source": {grade_id: textwrap.dedent(read_solutions) for grade_id in solutions(QUIZ)},
        "find_the_key": {grade_id: FIND_THE_KEY.replace("MARKERS", repr(_key_markers())) for grade_id in solutions(QUIZ)}
        | {"q1_answer": FIND_THE_KEY.replace("MARKERS", repr(_key_markers())) + _observe("found", "_found") + _observe("files", "len(_paths)")},
        "walk_the_host": _hostile(WALK_THE_HOST + _observe("visible", "[p for p in _visible if not p.startswith(('/tmp/', '/etc', '/opt/ketamine-course'))][:40]")),
        "read_gradebook": _hostile(_observe("gradebook", f"open({str(course / 'gradebook.db')!r}, 'rb').read(64)")),
        "read_home": _hostile(_observe("home", f"open({str(instructor_home / 'secrets.txt')!r}).read()")),
        "read_other_student": _hostile(_observe("other", f"open({str(course / 'submitted' / 'correct' / QUIZ / (QUIZ + '.ipynb'))!r}).read(100)")),
        "write_outside": _hostile(
            _observe("course", f"open({str(course / 'hacked.txt')!r}, 'w').write('x')")
            + _observe("parent", "open('../../hacked.txt', 'w').write('x')")
            + _observe("canary", f"open({str(course / 'canary.txt')!r}, 'w').write('changed')")
            + _observe("source", f"open({str(source_nb)!r}, 'w').write('{{}}')")
            + _observe("tmp", f"open({str(tmp / 'hacked.txt')!r}, 'w').write('x')")
        ),
        "swap_files": _hostile(SWAP_FILES + _observe("made", "_made")),
        "network": _hostile(
            _observe("loopback", f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=2)")
            + _observe("internet", "__import__('socket').create_connection(('192.0.2.1', 53), timeout=2)")
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
        "threads_left_running": _hostile(
            """
            import threading, time, subprocess
            threading.Thread(target=lambda: [time.sleep(1) for _ in range(600)], daemon=False).start()
            subprocess.Popen(["sleep", "600"], start_new_session=True)
            """
        ),
        "memory": _hostile("_hoard = []\nwhile True:\n    _hoard.append(bytearray(100 * 1024 * 1024))"),
        "memory_in_four": _hostile(memory_in_four + _observe("alive", "_alive")),
        "fill_tmp": _hostile("for _i in range(12):\n    with open(f'/tmp/fill{_i}', 'wb') as _f:\n        for _ in range(50):\n            _f.write(b'x' * 1024 * 1024)\n" + _observe("written", "sum(__import__('os').path.getsize(f'/tmp/fill{i}') for i in range(12))")),
        "fill_disk": _hostile("for _i in range(5000):\n    open(f'junk{_i}.bin', 'wb').write(b'x' * 200_000)"),
        "many_files": _hostile("import os\nfor _i in range(50_000):\n    open(f'f{_i}', 'w').close()"),
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
            import json, ketamine_course.quiz as q, ketamine_course.quiz.wire as p
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
            print({RECORD_MARKER!r} + '{{"grade_id": "q1_test", "values": {{"answer_q1": {{"type": "int", "value": ' + '9' * 5000 + '}}}}}}')
            print({RECORD_MARKER!r} + '[' * 100_000 + ']' * 100_000)
            """
        ),
        "html_everywhere": _hostile(HTML_OUTPUTS),
    }
    honest = {"correct": solutions(QUIZ), "wrong_q3": {**solutions(QUIZ), "q3_answer": wrong(solutions(QUIZ)["q3_answer"])}}
    for name, answers in {**students, **honest}.items():
        nb = submission(QUIZ, answers)
        if name == "html_everywhere":
            nb = with_hostile_cells(nb)
        submit(course, QUIZ, name, nb)
    # An honest student who pasted cells (JupyterLab copies the nbgrader metadata with the cell).
    submit(course, QUIZ, "pasted_cells", _pasted(submission(QUIZ, {k: v for k, v in solutions(QUIZ).items() if k != "q2_answer"}), solutions(QUIZ)))
    # Submissions that must be refused, with the reason, before anything reads them.
    refused = {}
    submit(course, QUIZ, "link_to_source", submission(QUIZ, {}))
    os.symlink(source_nb, course / "submitted" / "link_to_source" / QUIZ / "notes.ipynb")
    refused["link_to_source"] = "symbolic link"
    folder = course / "submitted" / "notebook_is_a_link" / QUIZ
    folder.mkdir(parents=True)
    os.symlink(course / "submitted" / "correct" / QUIZ / f"{QUIZ}.ipynb", folder / f"{QUIZ}.ipynb")
    refused["notebook_is_a_link"] = "symbolic link"
    submit(course, QUIZ, "hard_link", submission(QUIZ, {}))
    os.link(course / "gradebook.db", course / "submitted" / "hard_link" / QUIZ / "data.db")
    refused["hard_link"] = "hard link"
    huge = submission(QUIZ, {})
    huge.cells.append(nbformat.v4.new_markdown_cell("x" * 25_000_000))
    submit(course, QUIZ, "huge_notebook", huge)
    refused["huge_notebook"] = "MB"
    html_id = "<img src=x onerror=alert(1)>"
    submit(course, QUIZ, html_id, submission(QUIZ, solutions(QUIZ)))
    refused[html_id] = "not a plain id"

    protected = {"source": course / "source", "release": course / "release", "home": instructor_home, "correct": course / "submitted" / "correct"}
    before = {name: tree_digest(folder) for name, folder in protected.items()}
    import tempfile

    kernels = tmp / "kernels"  # the cages' private folders go here, so that leftovers are this test's own
    kernels.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(kernels)
    from ketamine_course.grading.sandbox import private_folder_base

    assert private_folder_base() == str(kernels)  # else the kernels would live elsewhere and the leftover check see nothing
    try:
        start = time.perf_counter()
        db = f"sqlite:///{course / 'gradebook.db'}"
        results = {r.student_id: r for r in grade_class(course, QUIZ, timeout_s=5, notebook_timeout_s=20, progress=None, db_url=db)}
        elapsed = time.perf_counter() - start
    finally:
        tempfile.tempdir = saved
    kernels_after = _live_kernels(kernels)
    stop.set()
    thread.join()
    listener.close()
    after = {name: tree_digest(folder) for name, folder in protected.items()}
    return dict(
        course=course, tmp=tmp, results=results, students=students, refused=refused, elapsed=elapsed, before=before, after=after,
        connections=connections, kernels_after=kernels_after,
    )


def _live_kernels(folder: Path) -> list[str]:
    """Graded kernels (any process whose command names ``folder``) and private folders still present under ``folder``."""
    import psutil

    found = [f"process {p.pid}" for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
    return found + [str(p) for p in folder.glob("ketamine-kernel-*")]


def test_the_batch_finishes_and_no_hostile_submission_earns_a_point(hostile_class) -> None:
    results = hostile_class["results"]
    assert set(hostile_class["students"]) <= set(results)
    for name in hostile_class["students"]:
        assert results[name].score == 0, (name, results[name].messages, results[name].error)
        assert results[name].error is None, (name, results[name].error)
    assert results["correct"].score == results["correct"].max_score
    # one submission loops in every cell: bounded by the per-notebook limit, not cells x timeout
    assert results["loop_every_cell"].seconds < 40
    assert hostile_class["elapsed"] < 400


def test_nothing_the_kernel_can_read_holds_the_key_or_another_student_s_work(hostile_class) -> None:
    course = hostile_class["course"]
    assert _observations(course, "find_the_key")["found"] == "[]"
    assert int(_observations(course, "find_the_key")["files"]) > 0, "the search ran"
    visible = _observations(course, "walk_the_host")["visible"]
    assert str(course) not in visible and "submitted" not in visible and "gradebook" not in visible, visible
    for student, key in (("read_gradebook", "gradebook"), ("read_home", "home"), ("read_other_student", "other")):
        assert _observations(course, student)[key].startswith("blocked"), (student, _observations(course, student))


def test_nothing_outside_the_submission_changes(hostile_class) -> None:
    course, tmp = hostile_class["course"], hostile_class["tmp"]
    seen = _observations(course, "write_outside")
    # the course, its canary and source/ are out of reach; '../..' and the instructor's temporary folder are
    # names inside the kernel's own private /tmp, so a write there lands nowhere on the host (checked below)
    assert all(seen[k].startswith("blocked") for k in ("course", "canary", "source")), seen
    assert not (course / "hacked.txt").exists() and not (tmp / "hacked.txt").exists()
    assert not (course / "autograded" / "hacked.txt").exists()
    assert (course / "canary.txt").read_text() == "untouched"
    assert hostile_class["before"] == hostile_class["after"]


def test_links_made_by_the_kernel_are_never_followed(hostile_class) -> None:
    course, results = hostile_class["course"], hostile_class["results"]
    assert _observations(course, "swap_files")["made"] != "[]", "the kernel could make links in its own folder"
    for path in (course / "autograded").rglob("*"):
        assert not path.is_symlink(), path
    assert results["correct"].score == results["correct"].max_score
    assert (course / "gradebook.db").is_file()


def test_folders_left_behind_are_not_world_writable(hostile_class) -> None:
    course = hostile_class["course"]
    for folder in ("autograded", "submitted", "reports"):
        for path in [course / folder, *(course / folder).rglob("*")]:
            if path.exists() and not path.is_symlink():
                assert not path.stat().st_mode & stat.S_IWOTH, path


def test_refused_submissions_say_why_and_the_class_is_graded(hostile_class) -> None:
    results = hostile_class["results"]
    for student, reason in hostile_class["refused"].items():
        assert results[student].error is not None and reason in results[student].error, (student, results[student].error)
        assert results[student].score == 0 and results[student].needs_manual_grade
    # a refused id never reaches the gradebook (the formgrader would render it)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hostile_class['course'] / 'gradebook.db'}") as gradebook:
        ids = {s.id for s in gradebook.students}
    assert not any("<" in i for i in ids), ids


def test_no_network_from_the_kernel(hostile_class) -> None:
    seen = _observations(hostile_class["course"], "network")
    assert seen["loopback"].startswith("blocked") and seen["internet"].startswith("blocked"), seen
    assert hostile_class["connections"] == []


def test_limits_hold_for_the_whole_kernel(hostile_class) -> None:
    course, results = hostile_class["course"], hostile_class["results"]
    children = int(_observations(course, "fork_bomb").get("children", "0"))
    assert children < 64, "the process limit stops a fork bomb"
    assert results["memory"].error is None
    alive = _observations(course, "memory_in_four").get("alive", "0")  # absent when the watchdog stopped the whole kernel
    assert not alive.isdigit() or int(alive) <= 2, "four processes of 700 MB together stay under the kernel's 2 GiB"
    written = _observations(course, "fill_tmp").get("written", "0")  # absent when the kernel was stopped first
    assert not written.isdigit() or int(written) < 300 * 1024**2
    for student in ("fill_disk", "many_files"):
        text = "\n".join(results[student].messages.values()) + nbformat.writes(nbformat.read(course / "autograded" / student / QUIZ / f"{QUIZ}.ipynb", as_version=4))
        assert "the grader stopped the kernel" in text, student
    printed = (course / "autograded" / "print_megabytes" / QUIZ / f"{QUIZ}.ipynb").stat().st_size
    assert printed < 3_000_000, "output is capped"


def test_kernels_end_with_their_notebook(hostile_class) -> None:
    assert hostile_class["kernels_after"] == []
    import psutil

    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and p.info["cmdline"][:2] == ["sleep", "600"]]


def test_exits_stop_only_that_submission(hostile_class) -> None:
    results = hostile_class["results"]
    for name in ("sys_exit", "os_exit"):
        assert results[name].score == 0
    assert results["wrong_q3"].score == results["correct"].max_score - 2


def test_a_pasted_cell_keeps_the_student_s_points_and_is_flagged(hostile_class) -> None:
    result = hostile_class["results"]["pasted_cells"]
    assert result.error is None
    assert result.score == result.max_score, result.messages
    problems = {(f.grade_id, f.problem) for f in result.tampering}
    assert ("q2_answer", "duplicated") in problems and any(f.problem == "metadata invalid" for f in result.tampering), problems
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hostile_class['course'] / 'gradebook.db'}") as gradebook:  # the formgrader's Flagged column
        assert gradebook.find_submission_notebook(QUIZ, QUIZ, "pasted_cells").flagged
        assert not gradebook.find_submission_notebook(QUIZ, QUIZ, "correct").flagged


def test_graded_notebooks_and_feedback_carry_nothing_active(hostile_class) -> None:
    from ketamine_course.grading import run

    course = hostile_class["course"]
    config = run.grading_config(course, f"sqlite:///{course / 'gradebook.db'}")
    with run._quiet_nbgrader():
        assert run._api(config).generate_feedback(QUIZ, "html_everywhere", force=True)["success"]
    graded_nb = nbformat.read(course / "autograded" / "html_everywhere" / QUIZ / f"{QUIZ}.ipynb", as_version=4)
    assert active_content(notebook_markup(graded_nb)) == []
    page = (course / "feedback" / "html_everywhere" / QUIZ / f"{QUIZ}.html").read_text()
    assert active_content(page) == []
    assert "widget-state" not in page and "<b>bold</b>" in notebook_markup(graded_nb), "harmless HTML is kept"
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page


def test_hostile_records_fail_only_their_question(tmp_path: Path) -> None:
    """A function answer that prints forged record lines (a 5000-digit integer, 100 000 brackets) fails only that question."""
    sandbox_or_skip()
    quiz = "quiz03_pharmacokinetics"
    course = make_course(tmp_path, quiz)
    right = solutions(quiz)
    forging = right["q6_answer"] + textwrap.dedent(
        f"""
        _honest = concentration_after
        def concentration_after(*args):
            print({RECORD_MARKER!r} + '{{"grade_id": "q6_test", "values": {{}}, "calls": {{"x": ' + '9' * 5000 + '}}}}')
            print({RECORD_MARKER!r} + '[' * 100_000 + ']' * 100_000)
            return _honest(*args)
        """
    )
    submit(course, quiz, "forger", submission(quiz, {**right, "q6_answer": forging}))
    (result,) = grade_class(course, quiz, progress=None, db_url=f"sqlite:///{course / 'gradebook.db'}")
    assert result.error is None
    lost = {q for q, (score, points) in result.questions.items() if score < points}
    assert lost <= {"q6_test"}, result.messages


def _nbgrader(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def cli_graded(hostile_class, tmp_path_factory):
    """The same class graded again with nbgrader's own command line, as an instructor types it."""
    course = tmp_path_factory.mktemp("cli") / "course"
    shutil.copytree(hostile_class["course"], course, symlinks=True, ignore=shutil.ignore_patterns("autograded", "feedback", "reports"))
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "c.Execute.timeout = 5\nc.BoundedExecute.notebook_timeout = 20\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)  # again, now that the root is this course\n"
    )
    kernels = course.parent / "kernels"
    kernels.mkdir()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course.parent / "jupyter"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "TMPDIR": str(kernels)}
    autograde = _nbgrader("autograde", QUIZ, "--force", cwd=course, env=env)
    feedback = _nbgrader("generate_feedback", QUIZ, "--force", cwd=course, env=env)
    return dict(course=course, autograde=autograde, feedback=feedback, kernels_after=_live_kernels(kernels))


def test_nbgrader_autograde_grades_the_class_the_same_and_reports_refusals(hostile_class, cli_graded) -> None:
    from nbgrader.api import Gradebook

    autograde = cli_graded["autograde"]
    log = autograde.stdout + autograde.stderr
    for student, reason in hostile_class["refused"].items():
        if student == "hard_link":
            continue  # copying the course for this run made the hard link an ordinary file
        shown = student.encode("unicode_escape").decode("ascii")
        assert any(f"Not graded: {shown}: " in line and reason in line for line in log.splitlines()), (student, log[-3000:])
    with Gradebook(f"sqlite:///{cli_graded['course'] / 'gradebook.db'}") as gradebook:
        for student, result in hostile_class["results"].items():
            if result.error:
                continue
            assert gradebook.find_submission(QUIZ, student).score == result.score, student
    assert cli_graded["kernels_after"] == []


def test_nbgrader_feedback_pages_carry_nothing_active(cli_graded) -> None:
    page = cli_graded["course"] / "feedback" / "html_everywhere" / QUIZ / f"{QUIZ}.html"
    assert page.is_file(), cli_graded["feedback"].stdout[-3000:] + cli_graded["feedback"].stderr[-3000:]
    text = page.read_text()
    assert active_content(text) == []
    assert "Content-Security-Policy" in text


def test_the_exploits_work_without_the_defences(tmp_path: Path) -> None:
    """Controls: unsandboxed, reading source/ scores full marks; a link in a submission is followed by plain nbgrader."""
    course = make_course(tmp_path, QUIZ)
    exploit = f"""
import json
_nb = json.load(open({str(course / 'source' / QUIZ / f'{QUIZ}.ipynb')!r}))
for _cell in _nb["cells"]:
    if _cell["metadata"].get("nbgrader", {{}}).get("solution"):
        exec("".join(_cell["source"]), globals())
"""
    submit(course, QUIZ, "exploit", submission(QUIZ, {grade_id: exploit for grade_id in solutions(QUIZ)}))
    (result,) = grade_class(course, QUIZ, ["exploit"], progress=None, sandbox=False, db_url=f"sqlite:///{course / 'gradebook.db'}")
    assert result.score == result.max_score
    # shutil.copy (what nbgrader's autograde does with a submission's extra files) follows a link
    (tmp_path / "link").symlink_to(course / "gradebook.db")
    shutil.copy(tmp_path / "link", tmp_path / "copied")
    assert (tmp_path / "copied").read_bytes()[:15] == b"SQLite format 3"
    # and the kernel's own folder is writable by the kernel: links made there would be followed by a grader that copied from it
    assert release_nb(QUIZ).cells


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
    with pytest.raises(sandbox.SandboxUnavailable, match="bwrap, prlimit.* not found.*apt-get install bubblewrap.*--unsandboxed"):
        grade_class(tmp_path, QUIZ, ["nobody"], progress=None)


def test_self_grading_runs_without_bubblewrap_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Binder has no bubblewrap: a learner grading their own quiz falls back to an unsandboxed kernel, and is told."""
    from ketamine_course.grading import sandbox, self_grade

    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None)
    notebook = tmp_path / f"{QUIZ}.ipynb"
    nbformat.write(submission(QUIZ, solutions(QUIZ)), notebook)
    result = self_grade(QUIZ, notebook, course_root=ROOT, feedback_dir=tmp_path / "feedback")
    assert result.grade.score == result.grade.max_score
    assert result.feedback_html.is_file() and not result.sandboxed


def test_collect_takes_only_plain_files_from_the_exchange(tmp_path: Path) -> None:
    """``nbgrader collect``: links, pipes and unplain ids in the exchange's inbound folder are refused with a reason; the rest is collected."""
    course, exchange, home = tmp_path / "course", tmp_path / "exchange", tmp_path / "students"
    exchange.mkdir(mode=0o777)
    shutil.copytree(ROOT / "source" / QUIZ, course / "source" / QUIZ)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\nc.ExchangeCollect.check_owner = False\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    assert _nbgrader("generate_assignment", QUIZ, "--force", cwd=course, env=env).returncode == 0
    assert _nbgrader("release_assignment", QUIZ, "--force", cwd=course, env=env).returncode == 0
    student_home = home / "ada"
    student_home.mkdir(parents=True)
    (student_home / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\nc.Exchange.cache = {str(tmp_path / 'cache')!r}\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
    )
    assert _nbgrader("fetch_assignment", QUIZ, "--course", COURSE_ID, cwd=student_home, env=env).returncode == 0
    assert _nbgrader("submit", QUIZ, "--course", COURSE_ID, "--student", "ada", cwd=student_home, env=env).returncode == 0
    inbound = exchange / COURSE_ID / "inbound"
    (honest,) = list(inbound.iterdir())
    rest = honest.name.split("+", 1)[1]
    # a notebook that is a link to the key; a folder that is a link; a pipe; an id that is HTML
    linked = inbound / f"mallory+{rest}"
    shutil.copytree(honest, linked)
    (linked / f"{QUIZ}.ipynb").unlink()
    (linked / f"{QUIZ}.ipynb").symlink_to(course / "source" / QUIZ / f"{QUIZ}.ipynb")
    (inbound / f"eve+{rest}").symlink_to(course / "source" / QUIZ)
    piped = inbound / f"trudy+{rest}"
    shutil.copytree(honest, piped)
    os.mkfifo(piped / "notes.txt")
    shutil.copytree(honest, inbound / f"<img src=x onerror=alert(1)>+{rest}")
    collected = _nbgrader("collect", QUIZ, cwd=course, env=env)
    log = collected.stdout + collected.stderr
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["ada"], log[-3000:]
    assert "symbolic link" in log and "not a regular file" in log and "not a plain id" in log, log[-3000:]
    for path in (course / "submitted").rglob("*"):
        assert not path.is_symlink() and not path.stat().st_mode & stat.S_IWOTH, path
