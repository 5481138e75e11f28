"""README.md's instructor block, run as written: each command in its fenced block, in order, as a normal user.

The block is read from README.md (so the test and the README cannot drift). Its command lines run in
one bash session in a fresh clone of the course; at each ``# each student:`` line three students run
the nbgrader command that line names, each in a home of their own: Ada answers right, Ben gets one
question wrong, Cy submits the quiz blank. As the test has one uid, each student passes ``--student``,
and the exchange is the test's own folder (``KETAMINE_EXCHANGE`` for the instructor, each student's
``~/.jupyter/nbgrader_config.py`` for them), standing in for the administrator's ``/srv/nbgrader/exchange``.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from browser_helpers import clone_course, git_status
from conftest import sandbox_or_skip
from grading_helpers import ROOT, hidden_lines, page_text, question_points, solutions, submission, wrong
from ketamine_course.grading.config import COURSE_ID

pytestmark = pytest.mark.slow
QUIZ = "quiz01_history"
STUDENT_LINE = re.compile(r"^#\s*each student\b.*?(nbgrader\s.+)$")

# Run for each student by the bash session at each '# each student:' line: the named nbgrader command in
# the student's home, after putting the student's answers in the fetched quiz when the command submits.
STUDENTS_SCRIPT = '''
import os, shutil, subprocess, sys
from pathlib import Path
students, command = Path(sys.argv[1]), sys.argv[2:]
for home in sorted(p for p in students.iterdir() if p.is_dir()):
    if command[1] == "submit":
        shutil.copy(home / "answers.ipynb", home / command[2] / (command[2] + ".ipynb"))
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter")}
    env.pop("KETAMINE_EXCHANGE", None)
    subprocess.run([*command, "--student", home.name], cwd=home, env=env, check=True)
'''


def readme_block() -> list[str]:
    """The lines of the README's instructor command block (the fenced bash block whose steps include ./course setup)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Instructors") :]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    block = next(b for b in blocks if any(line.startswith("./course setup") for line in b.splitlines()))
    return [line for line in block.splitlines() if line.strip()]


def session_script(lines: list[str], students_script: Path, students: Path) -> str:
    """The block as one bash script: command lines verbatim; each student line runs its command for every student."""
    out = ["set -euo pipefail", "set -x"]
    for line in lines:
        student = STUDENT_LINE.match(line)
        if student:
            command = student.group(1).split("#")[0].split()
            out.append(" ".join(shlex.quote(w) for w in [sys.executable, str(students_script), str(students), *command]))
        elif not line.startswith("#"):
            out.append(line)
    return "\n".join(out) + "\n"


def test_block_has_the_student_steps_and_every_step_is_run() -> None:
    lines = readme_block()
    assert lines[0].startswith("chmod 700 .") and lines[1].startswith("./course setup")
    student_commands = [STUDENT_LINE.match(line).group(1).split()[:2] for line in lines if STUDENT_LINE.match(line)]  # type: ignore[union-attr]
    assert student_commands == [["nbgrader", "fetch_assignment"], ["nbgrader", "submit"], ["nbgrader", "fetch_feedback"]]
    assert all(STUDENT_LINE.match(line) or not line.startswith("#") for line in lines), "a comment line that is not a student's step"


def test_readme_instructor_block_as_written(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("the README's instructor runs as a normal user, never root (CI runs this as course-ci)")
    sandbox_or_skip()
    clone = clone_course(tmp_path / "ketamine-course")
    exchange, students = tmp_path / "exchange", tmp_path / "students"
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o1777)  # the administrator's 'install -d -m 1777'
    right = solutions(QUIZ)
    q3 = next(grade_id for grade_id in right if grade_id.startswith("q3"))
    answers = {"ada": right, "ben": {**right, q3: wrong(right[q3])}, "cy": {}}
    for name, answer in answers.items():
        home = students / name
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n")
        nbformat.write(submission(QUIZ, answer), home / "answers.ipynb")
    helper = tmp_path / "students.py"
    helper.write_text(STUDENTS_SCRIPT)
    script = session_script(readme_block(), helper, students)
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
    done = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the README's block failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"

    points = question_points(QUIZ)
    total = sum(points.values())
    expected = {"ada": total, "ben": total - points["q3"], "cy": 0}
    for name, score in expected.items():
        pages = list((students / name / QUIZ / "feedback").rglob(f"{QUIZ}.html"))
        assert len(pages) == 1, f"{name} should have fetched exactly their own feedback page, got {pages}"
        text = page_text(pages[0])
        assert re.search(rf"\b{score:g}\.?0*\s*/\s*{total:g}", text), f"{name}'s page does not show {score:g}/{total:g}"
        for line in hidden_lines(QUIZ):
            assert line not in text
    with (clone / "grades" / "canvas.csv").open(newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and canvas[0][5:] == [QUIZ]
    assert {row[3]: float(row[5]) for row in canvas[2:]} == expected
    with (clone / "grades" / "moodle.csv").open(newline="") as handle:
        assert {row["Username"]: float(row[QUIZ]) for row in csv.DictReader(handle)} == expected
    # The course's own files are as they were: release/ regenerated byte-identically, everything else ignored.
    assert git_status(clone) == []
    assert oct(exchange.stat().st_mode & 0o7777) == "0o1777"
    course = exchange / COURSE_ID
    assert oct((course / "inbound").stat().st_mode & 0o777) == "0o733"
    assert oct((course / "outbound").stat().st_mode & 0o777) == "0o755"
