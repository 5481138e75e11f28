"""README.md's instructor block, run as written: each command in its fenced block, in order, as a normal user.

The block is read from README.md (so the test and the README cannot drift). Its command lines run in
one bash session in a fresh clone of the course, with the README's class list saved as ``roster.csv``;
at each ``# each student:`` line three students run the command that line names, as written, in the
``work/`` folder of a copy of the course of their own (so ``../.venv/bin/nbgrader`` is their copy's):
Ada answers right, Ben gets one question wrong, Cy submits the quiz blank. As the test has one uid, each
student passes ``--student``, and the exchange is the test's own folder (``KETAMINE_EXCHANGE`` for the
instructor, each student's ``~/.jupyter/nbgrader_config.py`` for them), standing in for the
administrator's ``/srv/nbgrader/exchange``. ``jupyter lab``, which runs until stopped, starts in the
background with the test's own port and token, as in a second terminal; the formgrader on it is asked
what the instructor would look at there.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from browser_helpers import _free_port, clone_course, git_status
from conftest import sandbox_or_skip
from grading_helpers import (
    ROOT,
    Server,
    formgrader_api,
    hidden_lines,
    page_text,
    question_points,
    solutions,
    submission,
    wait_until_answering,
    wrong,
)
from ketamine_course.grading.config import COURSE_ID

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"
STUDENT_LINE = re.compile(r"^#\s*each student\b.*?(\S*nbgrader\s.+)$")
LAB_LINE = re.compile(r"^jupyter lab\b")

# Run for each student by the bash session at each '# each student:' line: the named command, in the work/ folder of
# the student's own copy of the course, after putting the student's answers in the fetched quiz when it submits.
STUDENTS_SCRIPT = '''
import os, shutil, subprocess, sys
from pathlib import Path
students, command = Path(sys.argv[1]), sys.argv[2:]
for home in sorted(p for p in students.iterdir() if p.is_dir()):
    work = home / "ketamine-course" / "work"
    if command[1] == "submit":
        shutil.copy(home / "answers.ipynb", work / command[2] / (command[2] + ".ipynb"))
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter")}
    env.pop("KETAMINE_EXCHANGE", None)
    subprocess.run([*command, "--student", home.name], cwd=work, env=env, check=True)
'''


def readme_section() -> str:
    """README.md's Instructors section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Instructors")
    return text[start : text.index("\n### ", start + 1)]


def readme_block() -> list[str]:
    """The lines of the README's instructor command block (the fenced bash block whose steps include ./course setup)."""
    blocks = re.findall(r"```bash\n(.*?)```", readme_section(), re.S)
    block = next(b for b in blocks if any(line.startswith("./course setup") for line in b.splitlines()))
    return [line for line in block.splitlines() if line.strip()]


def readme_roster_text() -> str:
    """The README's example class list: the text of its fenced csv block."""
    (block,) = re.findall(r"```csv\n(.*?)```", readme_section(), re.S)
    return block


def readme_roster() -> list[dict[str, str]]:
    """The README's example class list, row by row."""
    return list(csv.DictReader(readme_roster_text().splitlines()))


def session_script(lines: list[str], students_script: Path, students: Path, lab: Server, lab_log: Path) -> str:
    """The block as one bash script: command lines verbatim; each student line runs its command for every student;
    ``jupyter lab`` starts in the background (its own session) on the test's port with the test's token."""
    out = ["set -euo pipefail", "set -x"]
    port = lab.url.rsplit(":", 1)[1]
    for line in lines:
        student = STUDENT_LINE.match(line)
        if student:
            command = student.group(1).split("#")[0].split()
            out.append(" ".join(shlex.quote(w) for w in [sys.executable, str(students_script), str(students), *command]))
        elif LAB_LINE.match(line):
            command = line.split("#")[0].strip()
            out.append(
                f"setsid {command} --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0"
                f" --IdentityProvider.token={lab.token} >{shlex.quote(str(lab_log))} 2>&1 &"
            )
            out.append(f"echo $! >{shlex.quote(str(lab_log.with_suffix('.pid')))}")
        elif not line.startswith("#"):
            out.append(line)
    return "\n".join(out) + "\n"


def _lab_gone(lab_log: Path) -> str | None:
    """The end of the background ``jupyter lab``'s log if it has exited (None while it runs)."""
    try:
        os.kill(int(lab_log.with_suffix(".pid").read_text()), 0)
        return None
    except (OSError, ValueError):
        return lab_log.read_text(errors="replace")[-3000:]


def test_block_has_the_student_steps_and_every_step_is_run() -> None:
    lines = readme_block()
    assert lines[0].startswith("chmod 700 .") and lines[1].startswith("./course setup")
    student_commands = [STUDENT_LINE.match(line).group(1).split()[:2] for line in lines if STUDENT_LINE.match(line)]  # type: ignore[union-attr]
    nbgrader = "../.venv/bin/nbgrader"  # the student's own copy's, from its work/ folder
    assert student_commands == [[nbgrader, "fetch_assignment"], [nbgrader, "submit"], [nbgrader, "fetch_feedback"]]
    assert all(STUDENT_LINE.match(line) or not line.startswith("#") for line in lines), "a comment line that is not a student's step"
    # the class list and the due date come before the quiz is released; the formgrader once there are grades
    steps = [line.split("#")[0].strip() for line in lines]
    order = [next(i for i, step in enumerate(steps) if step.startswith(start)) for start in (
        "nbgrader db student import roster.csv", "nbgrader db assignment add quiz01_history --duedate=",
        "nbgrader release_assignment", "ketamine-grade class", "jupyter lab", "nbgrader generate_feedback",
    )]
    assert order == sorted(order), steps


def test_the_late_penalty_the_readme_names_is_the_course_s_one_setting() -> None:
    from ketamine_course.grading.config import load_course_config

    section = readme_section()
    assert "`c.LateSubmissionPlugin.penalty_method`" in section and '`"none"` (the course\'s' in section
    config_text = (ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    assert config_text.count("LateSubmissionPlugin") == 1
    assert load_course_config(ROOT).LateSubmissionPlugin.penalty_method == "none"


def test_readme_instructor_block_as_written(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("the README's instructor runs as a normal user, never root (CI runs this as course-ci)")
    sandbox_or_skip()
    clone = clone_course(tmp_path / "ketamine-course")
    roster = readme_roster()
    (clone / "roster.csv").write_text(readme_roster_text())
    exchange, students = tmp_path / "exchange", tmp_path / "students"
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o1777)  # the administrator's 'install -d -m 1777'
    right = solutions(QUIZ)
    q3 = next(grade_id for grade_id in right if grade_id.startswith("q3"))
    answers = {"ada": right, "ben": {**right, q3: wrong(right[q3])}, "cy": {}}
    assert [row["id"] for row in roster] == list(answers), "the README's class list is the test's class"
    for name, answer in answers.items():
        home = students / name
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n")
        copy = clone_course(home / "ketamine-course")  # their own copy of the course, with work/ as ./course open makes it
        subprocess.run([sys.executable, "-m", "ketamine_course.workspace", ".", "work"], cwd=copy, check=True, capture_output=True)
        nbformat.write(submission(QUIZ, answer), home / "answers.ipynb")
    helper = tmp_path / "students.py"
    helper.write_text(STUDENTS_SCRIPT)
    lab, lab_log = Server(f"http://127.0.0.1:{_free_port()}", secrets.token_hex(16)), tmp_path / "lab.log"
    script = session_script(readme_block(), helper, students, lab, lab_log)
    instructor_home = tmp_path / "instructor"
    instructor_home.mkdir()
    # The three students here share the test's own uid, so collect's owner check (which refuses a submission
    # owned by someone other than the student it names) is off for this simulation only; the JupyterHub
    # test (tests/test_hub.py) runs the same steps with real accounts and the check on.
    (instructor_home / ".jupyter").mkdir()
    (instructor_home / ".jupyter" / "nbgrader_config.py").write_text("c = get_config()\nc.ExchangeCollect.check_owner = False\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(instructor_home),
        "LANG": "C.UTF-8",
        "KETAMINE_EXCHANGE": str(exchange),
        **({"CI": os.environ["CI"]} if "CI" in os.environ else {}),
    }
    try:
        done = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"the README's block failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        wait_until_answering(lab, 90, lambda: _lab_gone(lab_log))
        _check_formgrader(lab, roster)
    finally:
        pid_file = lab_log.with_suffix(".pid")
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), 15)

    points = question_points(QUIZ)
    total = sum(points.values())
    expected = {"ada": total, "ben": total - points["q3"], "cy": 0}
    for name, score in expected.items():
        pages = list((students / name / "ketamine-course" / "work" / QUIZ / "feedback").rglob(f"{QUIZ}.html"))
        assert len(pages) == 1, f"{name} should have fetched exactly their own feedback page, got {pages}"
        text = page_text(pages[0])
        assert re.search(rf"\b{score:g}\.?0*\s*/\s*{total:g}", text), f"{name}'s page does not show {score:g}/{total:g}"
        for line in hidden_lines(QUIZ):
            assert line not in text
    names = {row["id"]: f"{row['last_name']}, {row['first_name']}" for row in roster}
    with (clone / "grades" / "canvas.csv").open(newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and canvas[0][5:] == [QUIZ]
    assert {row[3]: float(row[5]) for row in canvas[2:]} == expected
    assert {row[3]: row[0] for row in canvas[2:]} == names, "the class list's names are in the grades"
    with (clone / "grades" / "moodle.csv").open(newline="") as handle:
        moodle = list(csv.DictReader(handle))
    assert {row["Username"]: float(row[QUIZ]) for row in moodle} == expected
    assert {row["Username"]: row["Email address"] for row in moodle} == {row["id"]: row["email"] for row in roster}
    # The course's own files are as they were: release/ regenerated byte-identically, everything else ignored
    # (the class list too).
    assert git_status(clone) == []
    assert oct(exchange.stat().st_mode & 0o7777) == "0o1777"
    course = exchange / COURSE_ID
    assert oct((course / "inbound").stat().st_mode & 0o777) == "0o733"
    assert oct((course / "outbound").stat().st_mode & 0o777) == "0o755"


def _check_formgrader(lab: Server, roster: list[dict[str, str]]) -> None:
    """What the instructor sees in the formgrader of the README's ``jupyter lab``: the class list by name, the quiz's
    due date, every submission graded and in Manual Grading; and JupyterLab offers Nbgrader -> Formgrader."""
    call = formgrader_api(lab)
    students = {s["id"]: (s["first_name"], s["last_name"], s["email"]) for s in call("/formgrader/api/students")}
    assert students == {row["id"]: (row["first_name"], row["last_name"], row["email"]) for row in roster}, "not 'None, None'"
    quiz = {a["name"]: a for a in call("/formgrader/api/assignments")}[QUIZ]  # (the others: in source/, unreleased)
    assert quiz["duedate"].startswith("2026-12-20T17:00:00") and quiz["num_submissions"] == len(roster), quiz
    assert all(s["autograded"] for s in call(f"/formgrader/api/submissions/{QUIZ}"))
    assert {s["student"] for s in call(f"/formgrader/api/submitted_notebooks/{QUIZ}/{QUIZ}")} == set(students)
    page = call("/lab", raw=True)
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert "@jupyter/nbgrader:formgrader" not in config.get("disabledExtensions", {}), "JupyterLab has no Formgrader menu"
