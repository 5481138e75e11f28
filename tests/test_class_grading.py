"""A class graded as an instructor grades it: in parallel, with submissions that cannot be graded.

Both of the instructor's commands are run as commands (``ketamine-grade class
--jobs 2`` and ``nbgrader autograde``), on a class where some submissions
cannot be graded: each must be named with its reason, flagged in the gradebook
(never a plain zero), held back from the LMS export, and make the command exit
non-zero, while the rest of the class is graded.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grading_helpers import ROOT, make_course, solutions, submission, submit
from ketamine_course.grading.config import COURSE_ID
from ketamine_course.grading.review import NOT_GRADED, is_hand_grading_copy
from ketamine_course.grading.sandbox import WORKER_SLOT_ENV, sandbox_uid_offset

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"
BIN = Path(sys.executable).parent

# student -> words the reason must contain
UNGRADABLE = {
    "renamed": f"no notebook named {QUIZ}.ipynb",
    "not_json": "not valid JSON",
    "other_quiz": f"no notebook named {QUIZ}.ipynb",
    "linked": "link",
    "empty": "holds no notebook",
}


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory: pytest.TempPathFactory, sandbox: bool) -> Path:
    """Four good submissions (two right, two blank) and one of each ungradable kind, in a course with its own config."""
    if not sandbox:
        pytest.skip("the instructor's commands refuse to grade without the sandbox")
    course = make_course(tmp_path_factory.mktemp("class"), QUIZ)
    right = submission(QUIZ, solutions(QUIZ))
    for student in ("ada", "cy"):
        submit(course, QUIZ, student, right)
    for student in ("ben", "dee"):
        submit(course, QUIZ, student, submission(QUIZ))
    submit(course, QUIZ, "renamed", right)
    (course / "submitted" / "renamed" / QUIZ / f"{QUIZ}.ipynb").rename(course / "submitted" / "renamed" / QUIZ / "my quiz.ipynb")
    folder = course / "submitted" / "not_json" / QUIZ
    folder.mkdir(parents=True)
    (folder / f"{QUIZ}.ipynb").write_text("{ this is not a notebook")
    submit(course, QUIZ, "other_quiz", right)
    (course / "submitted" / "other_quiz" / QUIZ / f"{QUIZ}.ipynb").rename(course / "submitted" / "other_quiz" / QUIZ / "quiz02_mechanism.ipynb")
    (course / "submitted" / "empty" / QUIZ).mkdir(parents=True)  # nbgrader alone skips such a folder with a warning
    submit(course, QUIZ, "linked", right)
    (course / "submitted" / "linked" / QUIZ / "notes.txt").symlink_to(course / "gradebook.db")
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)  # again, now that the root is this course\n"
    )
    return course


def _copy(course: Path, where: Path) -> Path:
    target = where / "course"
    shutil.copytree(course, target, symlinks=True)
    text = (target / "nbgrader_config.py").read_text().replace(str(course), str(target))
    (target / "nbgrader_config.py").write_text(text)
    return target


def _run(command: list[str], course: Path, watch: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run a grading command in the course folder; also return the most kernel folders alive at once under ``watch``."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "JUPYTER_CONFIG_DIR": str(course.parent / "jupyter"), "TMPDIR": str(watch)}
    most = 0
    done = threading.Event()

    def count() -> None:
        nonlocal most
        while not done.wait(0.02):
            most = max(most, sum(1 for p in watch.iterdir() if p.name.startswith("ketamine-kernel-")))

    thread = threading.Thread(target=count)
    thread.start()
    try:
        result = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=900)
    finally:
        done.set()
        thread.join()
    return result, most


def _flags(course: Path) -> dict[str, tuple[float, bool, bool, list[str]]]:
    """student -> (score, flagged, needs manual grade, automatic comments) from the gradebook."""
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        for sub in gradebook.assignment_submissions(QUIZ):
            notebooks = sub.notebooks
            comments = [c.auto_comment or "" for nb in notebooks for c in nb.comments]
            out[sub.student.id] = (float(sub.score), any(nb.flagged for nb in notebooks), bool(sub.needs_manual_grade), comments)
    return out


def _check_flags(course: Path, full_marks: float) -> None:
    flags = _flags(course)
    assert sorted(flags) == sorted(["ada", "ben", "cy", "dee", *UNGRADABLE])
    for student in ("ada", "cy"):
        assert flags[student][:3] == (full_marks, False, False), student
    for student in ("ben", "dee"):
        assert flags[student][:3] == (0.0, False, False), student
    for student, words in UNGRADABLE.items():
        score, flagged, manual, comments = flags[student]
        assert flagged and manual, student  # the formgrader's Flagged and Needs Manual Grade columns
        assert is_hand_grading_copy(course / "autograded" / student / QUIZ / f"{QUIZ}.ipynb"), student  # in Manual Grading
        assert comments and all(c.startswith(NOT_GRADED) and words in c for c in comments), (student, comments)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder for the graders' kernels with a short path (their sockets live in it; Linux caps socket paths)."""
    folder = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_ketamine_grade_class_in_two_workers_flags_what_it_cannot_grade(mixed_class: Path, tmp_path: Path, short_tmp: Path) -> None:
    course = _copy(mixed_class, tmp_path)
    watch = short_tmp
    result, most_kernels = _run([str(BIN / "ketamine-grade"), "class", QUIZ, "--jobs", "2"], course, watch)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "5 submission(s) could not be graded" in result.stderr
    assert "9 submissions, 4 graded, mean score" in out
    table = out.split("\nstudent ", 1)[1].split(" submissions, ")[0].splitlines()[1:-1]
    rows = [line.split()[0] for line in table]
    assert rows == sorted(["ada", "ben", "cy", "dee", *UNGRADABLE]), out  # the students' order, whatever order the workers finished in
    for student, words in UNGRADABLE.items():
        line = next(line for line in out.splitlines() if line.startswith(student + " "))
        assert line.split()[1] == "-" and "not graded, flagged for review" in line and words in line, line
    assert 1 <= most_kernels <= 2  # one kernel per worker at most
    assert list(watch.iterdir()) == []  # and nothing left behind
    full = _flags(course)["ada"][0]
    assert full > 0
    _check_flags(course, full)

    # the LMS files hold no zero for them: blank, and the export says so
    export = subprocess.run([str(BIN / "ketamine-grade"), "export", "--out", str(tmp_path / "grades")], cwd=course, capture_output=True, text=True, check=True)
    assert "grade(s) without a final score" in export.stdout
    for student in UNGRADABLE:
        assert f"  {student}  {QUIZ}: flagged for review (blank)" in export.stdout
    with open(tmp_path / "grades" / "moodle.csv", newline="") as handle:
        grades = {row["Username"]: row[QUIZ] for row in csv.DictReader(handle)}
    assert grades == {"ada": f"{full:g}", "cy": f"{full:g}", "ben": "0", "dee": "0", **dict.fromkeys(UNGRADABLE, "")}


def test_nbgrader_autograde_flags_the_same_submissions_and_exits_non_zero(mixed_class: Path, tmp_path: Path) -> None:
    course = _copy(mixed_class, tmp_path)
    watch = tmp_path / "tmp"
    watch.mkdir()
    result, _ = _run([sys.executable, "-m", "nbgrader", "autograde", QUIZ, "--force"], course, watch)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    for student, words in UNGRADABLE.items():
        assert any(f"Not graded: {student}: " in line and words in line for line in log.splitlines()), (student, log[-3000:])
    # refused before nbgrader copied anything: its graded folder holds only the hand-grading copy
    assert [p.name for p in (course / "autograded" / "linked" / QUIZ).iterdir()] == [f"{QUIZ}.ipynb"]
    full = _flags(course)["ada"][0]
    _check_flags(course, full)


def test_a_submission_fixed_by_the_instructor_scores_again(mixed_class: Path, tmp_path: Path) -> None:
    """The renamed notebook, renamed back by the instructor, is graded: its scores return (the flag stays for the instructor to clear)."""
    course = _copy(mixed_class, tmp_path)
    watch = tmp_path / "tmp"
    watch.mkdir()
    _run([str(BIN / "ketamine-grade"), "class", QUIZ, "--student", "renamed"], course, watch)
    folder = course / "submitted" / "renamed" / QUIZ
    (folder / "my quiz.ipynb").rename(folder / f"{QUIZ}.ipynb")
    result, _ = _run([str(BIN / "ketamine-grade"), "class", QUIZ, "--student", "renamed"], course, watch)
    assert result.returncode == 0, result.stdout + result.stderr
    score, flagged, manual, comments = _flags(course)["renamed"]
    assert score > 0 and not manual and flagged
    assert not any(c.startswith(NOT_GRADED) for c in comments)


def test_parallel_workers_never_share_a_sandbox_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_SLOT_ENV, "1/2")
    assert {sandbox_uid_offset() % 2 for _ in range(500)} == {1}
    monkeypatch.setenv(WORKER_SLOT_ENV, "0/3")
    assert {sandbox_uid_offset() % 3 for _ in range(500)} == {0}
    monkeypatch.setenv(WORKER_SLOT_ENV, "3/3")
    with pytest.raises(ValueError, match="slot"):
        sandbox_uid_offset()


@pytest.mark.parametrize("jobs", ["0", "two"])
def test_jobs_must_be_a_positive_whole_number(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    from ketamine_course.grading.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["class", QUIZ, "--jobs", jobs])
    assert stop.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_a_worker_killed_mid_class_loses_no_submission(tmp_path: Path, sandbox: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed from outside (the OOM killer, an administrator): the rest of the class is graded in the grader's process."""
    import psutil

    from ketamine_course.grading import grade_class

    if not sandbox:
        pytest.skip("grading a class needs the sandbox")
    kernels = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))  # short: the kernels' sockets live in their folders
    monkeypatch.setenv("TMPDIR", str(kernels))
    monkeypatch.setattr("tempfile.tempdir", None)
    course = make_course(tmp_path, QUIZ)
    right = submission(QUIZ, solutions(QUIZ))
    for number in range(6):
        submit(course, QUIZ, f"s{number}", right)
    killed: list[int] = []

    def kill_a_worker() -> None:
        while not any(kernels.glob("ketamine-kernel-*")):  # a worker is grading
            threading.Event().wait(0.05)
        worker = psutil.Process().children()[0]
        killed.append(worker.pid)
        worker.kill()

    thread = threading.Thread(target=kill_a_worker)
    thread.start()
    results = grade_class(course, QUIZ, db_url=f"sqlite:///{course / 'gradebook.db'}", progress=None, jobs=2)
    thread.join()
    assert killed
    assert [r.student_id for r in results] == [f"s{number}" for number in range(6)]
    assert all(r.error is None and r.score == r.max_score for r in results), [(r.student_id, r.error) for r in results]
    threading.Event().wait(1)
    assert _kernels_alive(kernels) == [], "the killed worker's kernel died with it (a kernel re-parented to init is no child of ours)"
    shutil.rmtree(kernels, ignore_errors=True)


def _kernels_alive(kernels: Path) -> list[str]:
    """Every process on the machine that belongs to a kernel of this folder (living: zombies are dead), from the process table."""
    import psutil

    alive = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and str(kernels) in " ".join(process.info["cmdline"] or []):
            alive.append(f"{process.pid} {' '.join(process.info['cmdline'])[:120]}")
    return alive


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_no_kernel_outlives_a_grader_killed_mid_class(tmp_path: Path, sandbox: bool, how: str) -> None:
    """The whole ketamine-grade command killed from outside while its workers' kernels run: every kernel ends with it."""
    import signal

    if not sandbox:
        pytest.skip("grading a class needs the sandbox")
    kernels = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))
    course = make_course(tmp_path, QUIZ)
    slow = {**solutions(QUIZ), "q1_answer": solutions(QUIZ)["q1_answer"] + "\nimport time\ntime.sleep(60)"}
    for number in range(4):
        submit(course, QUIZ, f"s{number}", submission(QUIZ, slow))
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "c.Execute.timeout = 120\nfrom ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    environment = {**os.environ, "TMPDIR": str(kernels), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = subprocess.Popen([str(BIN / "ketamine-grade"), "class", QUIZ, "--jobs", "2", "--root", str(course)], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = threading.Event()
    for _ in range(600):
        if len([k for k in _kernels_alive(kernels) if "ipykernel" in k]) >= 2:
            break
        deadline.wait(0.1)
    assert len([k for k in _kernels_alive(kernels) if "ipykernel" in k]) >= 2, "two kernels were running"
    command.send_signal(getattr(signal, how))
    command.wait(timeout=30)
    for _ in range(50):
        if not _kernels_alive(kernels):
            break
        deadline.wait(0.1)
    assert _kernels_alive(kernels) == []
    shutil.rmtree(kernels, ignore_errors=True)


def test_kernels_of_a_deep_temporary_folder_still_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TMPDIR too deep for Unix socket paths (a scheduler's, a test's) must not stop every kernel from starting."""
    from ketamine_course.grading.sandbox import UNIX_SOCKET_PATH_MAX, private_folder_base

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert private_folder_base() == "/tmp"
    monkeypatch.setenv("TMPDIR", "/tmp")
    monkeypatch.setattr("tempfile.tempdir", None)
    assert private_folder_base() == "/tmp" and len("/tmp/ketamine-kernel-xxxxxxxx/run/kernel-99") < UNIX_SOCKET_PATH_MAX


def test_a_quiz_the_gradebook_does_not_know_stops_before_anyone_is_graded(mixed_class: Path, tmp_path: Path) -> None:
    course = _copy(mixed_class, tmp_path)
    shutil.copytree(ROOT / "source" / "quiz02_mechanism", course / "source" / "quiz02_mechanism")
    submit(course, "quiz02_mechanism", "ada", submission(QUIZ))
    result = subprocess.run([str(BIN / "ketamine-grade"), "class", "quiz02_mechanism"], cwd=course, capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not know quiz02_mechanism; run 'nbgrader generate_assignment quiz02_mechanism'" in result.stderr
    assert "Traceback" not in result.stderr and not (course / "autograded" / "ada" / "quiz02_mechanism").exists()


def test_ctrl_c_stops_the_class_and_spoils_no_grade(mixed_class: Path, tmp_path: Path, short_tmp: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group): exit 130, no traceback, nobody flagged, nothing left; --changed goes on."""
    import signal

    course = _copy(mixed_class, tmp_path)
    for student in UNGRADABLE:
        shutil.rmtree(course / "submitted" / student)
    for number in range(6):
        submit(course, QUIZ, f"more{number}", submission(QUIZ, solutions(QUIZ)))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"), "TMPDIR": str(short_tmp)}
    command = [str(BIN / "ketamine-grade"), "class", QUIZ, "--jobs", "2"]
    # as typed at a terminal: its own process group, SIGINT handled by default (a test run started in the background
    # by a non-interactive shell inherits SIGINT ignored, which would make the command sail through Ctrl-C)
    process = subprocess.Popen(command, cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    first = process.stdout.readline()  # the first submission graded: the workers are busy with the next ones
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, first + out + err
    assert "Traceback" not in err and "Task exception" not in err, err
    assert "stopped; grades recorded so far are in the gradebook" in err
    assert list(short_tmp.iterdir()) == []
    for _ in range(50):  # and from the process table: no kernel of the stopped command lives on
        if not _kernels_alive(short_tmp):
            break
        threading.Event().wait(0.1)
    assert _kernels_alive(short_tmp) == []
    flags = _flags(course)
    assert not any(flagged or manual for _, flagged, manual, _ in flags.values()), flags
    assert 2 <= len(flags) < 10  # the ones in hand finished; the rest never started
    again = subprocess.run([*command, "--changed"], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    graded = _flags(course)
    assert len(graded) == 10 and not any(flagged for _, flagged, _, _ in graded.values())


def test_a_student_without_a_submission_is_named_and_the_rest_graded(mixed_class: Path, tmp_path: Path, short_tmp: Path) -> None:
    course = _copy(mixed_class, tmp_path)
    result, _ = _run([str(BIN / "ketamine-grade"), "class", QUIZ, "--student", "nosuch", "--student", "ada", "--jobs", "2"], course, short_tmp)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "no submission: there is no folder submitted/nosuch/quiz01_history (check the student id)" in result.stdout
    assert "nosuch" not in _flags(course) and _flags(course)["ada"][0] > 0
