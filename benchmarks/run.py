"""Course benchmarks: what learners and instructors feel, measured on this machine.

Run with ``./course bench`` (or ``.venv/bin/python benchmarks/run.py``). Prints a
Markdown table of medians, each with its target where the course has one, and
whether it was met. Absolute times on shared 2-core machines are noisy, so the
targets are mostly ratios measured within one run:

* a quiz executes in <= 1.5x the time of a bare kernel start (nbclient);
* grading one submission takes <= 1.2x executing the same notebook with nbclient;
* a plot update takes <= 25 ms in the kernel and <= 100 ms in the browser;
* a slider step shows the new dose text in <= 60 ms in the browser;
* a class of 30 like an instructor's (right, wrong, blank, errors, loops) is graded >= 1.8x faster with
  ``--jobs 2`` than with one worker, with the same grades;
* a learner's first self-grade of a quiz takes <= 1.5x a later one.

``--skip-browser`` and ``--skip-setup`` leave out the JupyterLab/Chromium rows
and the fresh-setup row (a clean clone set up with ``./course setup`` and no pip
cache, which needs the package index).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "tests"))

QUIZ_PER_BARE_KERNEL = 1.5
GRADING_PER_NBCLIENT = 1.2
GRADE_HERE_PER_NBCLIENT = 1.5  # the learner's journey: the score appears within 1.5x running the notebook
FIRST_GRADE_PER_LATER = 1.5
"""A learner's first self-grade of a quiz (course opened, quiz started) against a later one."""
KERNEL_PLOT_MS = 25.0
KERNEL_POPULATION_MS = 100.0
"""A redraw of 1000 people's curves, their median and 90% band (a single curve's target is KERNEL_PLOT_MS)."""
BROWSER_PLOT_MS = 100.0
BROWSER_TEXT_MS = 60.0
PARALLEL_SPEEDUP = 1.8
"""--jobs 2 against --jobs 1 on a class of CLASS_SIZE (this machine has 2 cores)."""
CLASS_SIZE = 30


class Table:
    """Rows of (measurement, median, comparison, target, met)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, name: str, value: str, comparison: str = "", target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "**not met**")
        self.rows.append((name, value, comparison, target, verdict))
        print(f"  {name}: {value} {comparison}".rstrip(), file=sys.stderr, flush=True)

    def markdown(self) -> str:
        lines = ["| measurement | median | compared with | target | |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def execute_notebook(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()


def bare_kernel() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()


def lessons(table: Table, kernel_s: float, repeat: int) -> None:
    total = 0.0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        seconds = median_seconds(lambda path=path: execute_notebook(path), repeat)
        total += seconds
        table.add(f"execute lesson {path.name}", f"{seconds:.2f} s", f"{seconds / kernel_s:.1f}x bare kernel")
    table.add("whole course: all lessons, one after another", f"{total:.1f} s")


def quizzes(table: Table, kernel_s: float, repeat: int, students: int) -> None:
    """Each quiz: a correct submission executed by nbclient, and graded (sandboxed, in one process); CLI for one
    quiz."""
    from grading_helpers import make_course, solutions, submission, submit
    from ketamine_course.grading import QUIZZES, grade_class

    for quiz in QUIZZES:
        with tempfile.TemporaryDirectory() as scratch:
            course = make_course(Path(scratch), quiz)
            answers = submission(quiz, solutions(quiz))
            names = [f"s{i:02d}" for i in range(students)]
            for name in names:
                submit(course, quiz, name, answers)
            path = course / "submitted" / names[0] / quiz / f"{quiz}.ipynb"
            nbclient_s = median_seconds(lambda path=path: execute_notebook(path), repeat)
            db = f"sqlite:///{course / 'gradebook.db'}"
            graded = grade_class(course, quiz, names, db_url=db, progress=None)
            assert all(r.score == r.max_score for r in graded), f"{quiz}: a correct submission lost points"
            grade_s = statistics.median(r.seconds for r in graded)
            ratio = nbclient_s / kernel_s
            table.add(f"{quiz}: execute a correct submission (nbclient)", f"{nbclient_s:.2f} s",
                      f"{ratio:.2f}x bare kernel", f"<= {QUIZ_PER_BARE_KERNEL}x", ratio <= QUIZ_PER_BARE_KERNEL)
            ratio = grade_s / nbclient_s
            table.add(f"{quiz}: grade one submission (ketamine-grade class, sandboxed)", f"{grade_s:.2f} s",
                      f"{ratio:.2f}x nbclient", f"<= {GRADING_PER_NBCLIENT}x", ratio <= GRADING_PER_NBCLIENT)
            if quiz == "quiz03_pharmacokinetics":
                unsandboxed = statistics.median(
                    r.seconds for r in grade_class(course, quiz, names, db_url=db, progress=None, sandbox=False)
                )
                table.add(f"{quiz}: grade one submission, --unsandboxed", f"{unsandboxed:.2f} s",
                          f"isolation adds {grade_s - unsandboxed:+.2f} s")
                here_s = _grade_here_seconds(quiz, answers, repeat)
                ratio = here_s / nbclient_s
                table.add(f"{quiz}: grade from inside the quiz (grade_here, quiz prepared)", f"{here_s:.2f} s",
                          f"{ratio:.2f}x nbclient", f"<= {GRADE_HERE_PER_NBCLIENT}x", ratio <= GRADE_HERE_PER_NBCLIENT)
                first_s, later_s = _first_grade_seconds(quiz, repeat)
                ratio = first_s / later_s
                table.add(f"{quiz}: a learner's first self-grade (course opened, quiz started)", f"{first_s:.2f} s",
                          f"{ratio:.2f}x a later one ({later_s:.2f} s)", f"<= {FIRST_GRADE_PER_LATER}x",
                          ratio <= FIRST_GRADE_PER_LATER)
                cli_s = _nbgrader_cli_seconds(course, quiz, names[: min(3, students)], db)
                table.add(f"{quiz}: grade one submission, nbgrader autograde command line", f"{cli_s:.2f} s",
                          f"{cli_s / nbclient_s:.2f}x nbclient (mostly Python imports)")


def _grade_here_seconds(quiz: str, answers: Any, repeat: int) -> float:
    """What a learner waits for after running the quiz's grading cell (its gradebook already prepared once)."""
    from ketamine_course.grading import here

    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        (course / "source").symlink_to(ROOT / "source")
        (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
        notebook = course / f"{quiz}.ipynb"
        nbformat.write(answers, notebook)
        os.environ["JPY_SESSION_NAME"] = str(notebook)
        here.grade_here()  # the first grade prepares the quiz's gradebook
        seconds = median_seconds(here.grade_here, repeat)
        os.environ.pop("JPY_SESSION_NAME")
    return seconds


def _first_grade_seconds(quiz: str, repeat: int) -> tuple[float, float]:
    """(first, later) self-grade seconds, measured in a fresh process (benchmarks/first_grade.py)."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("first_grade.py")), quiz, str(repeat)],
                          check=True, capture_output=True, text=True)
    first, later = (float(word) for word in done.stdout.split()[-2:])
    return first, later


def _nbgrader_cli_seconds(course: Path, quiz: str, names: list[str], db: str) -> float:
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = {db!r}\n"
        "from ketamine_course.grading.config import apply_pipeline\napply_pipeline(c)\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    times = []
    for name in names:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", quiz, "--student", name, "--force"],
                       cwd=course, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def instructors_class(right: dict[str, str], size: int = CLASS_SIZE) -> list[dict[str, str]]:
    """A class like an instructor's, of quiz03: right, one answer wrong, blank, an answer that raises, a function that
    loops until the time limit, one that writes to stderr; in a fixed shuffled order (the same in every run)."""
    import random

    from grading_helpers import wrong

    function = "q6_answer"
    header = right[function].split("\n", 1)[0]  # def concentration_after(...):
    kinds: list[dict[str, str]] = []
    for number in range(size):
        kind = number % 15
        if kind < 6:
            kinds.append(right)
        elif kind < 9:
            answer_id = sorted(right)[number % len(right)]
            kinds.append({**right, answer_id: wrong(right[answer_id])})
        elif kind < 11:
            kinds.append({})
        elif kind < 13:
            kinds.append({**right, "q4_answer": "raise ValueError('I am not sure')"})
        elif kind == 13:
            kinds.append({**right, function: f"{header}\n    while True:\n        pass"})
        else:
            kinds.append({**right, function: f"import sys\n{header}\n    print('checking', file=sys.stderr)\n"
                                              "    return c0_ng_per_ml * 0.5 ** (time_h / half_life_h)"})
    random.Random(2026).shuffle(kinds)
    return kinds


def class_in_parallel(table: Table, students: int = CLASS_SIZE) -> None:
    """The instructor's class of quiz03 (see :func:`instructors_class`) graded with one worker and with two."""
    import shutil

    from grading_helpers import make_course, solutions, submission, submit
    from ketamine_course.grading import grade_class

    quiz = "quiz03_pharmacokinetics"
    with tempfile.TemporaryDirectory() as scratch:
        base = make_course(Path(scratch) / "base", quiz)
        for number, answers in enumerate(instructors_class(solutions(quiz), students)):
            submit(base, quiz, f"s{number:03d}", submission(quiz, answers))
        seconds, grades = {}, {}
        for jobs in (1, 2):
            course = Path(scratch) / f"jobs{jobs}"
            shutil.copytree(base, course)
            start = time.perf_counter()
            results = grade_class(course, quiz, db_url=f"sqlite:///{course / 'gradebook.db'}", progress=None, jobs=jobs)
            seconds[jobs] = time.perf_counter() - start
            grades[jobs] = [(r.student_id, r.score, sorted(r.questions.items()), r.error) for r in results]
    same = grades[1] == grades[2]
    speedup = seconds[1] / seconds[2]
    table.add(f"instructor's class of {students} ({quiz}; right, wrong, blank, errors, loops): --jobs 1",
              f"{seconds[1]:.1f} s")
    table.add(f"instructor's class of {students}: --jobs 2", f"{seconds[2]:.1f} s",
              f"{speedup:.2f}x faster than --jobs 1; same grades: {'yes' if same else 'NO'}",
              f">= {PARALLEL_SPEEDUP}x, same grades", same and speedup >= PARALLEL_SPEEDUP)


def kernel_widgets(table: Table, repeat: int) -> None:
    from ketamine_course.widgets import DecayExplorer, DoseCalculator, OccupancyExplorer

    decay, occupancy, dose = DecayExplorer(), OccupancyExplorer(), DoseCalculator()
    values = iter(range(10**6))

    def set_half_life() -> None:
        decay.half_life_slider.value = 1.0 + 0.1 * (next(values) % 100)

    def set_conc() -> None:
        occupancy.conc_slider.value = 10.0 + next(values) % 1000

    def set_weight() -> None:
        dose.weight_slider.value = 40 + next(values) % 100

    from ketamine_course import population
    from ketamine_course.widgets import ExposureTimeline, PopulationExplorer

    crowd, timeline = PopulationExplorer(n_people=1000), ExposureTimeline()
    people = population.sample_population(1000)
    time_h = crowd.time_h

    def set_crowd_dose() -> None:
        crowd.dose_slider.value = 0.1 + 0.05 * (next(values) % 40)

    def crowd_numbers() -> None:
        conc = population.concentrations_ng_per_ml(people, 0.5, 40 / 60, time_h)
        population.percentiles_ng_per_ml(conc)

    def set_threshold() -> None:
        timeline.threshold_slider.value = 10 + next(values) % 80

    ms = 1000 * median_seconds(set_crowd_dose, repeat)
    table.add("population of 1000: dose slider -> curves, median, 90% band and shares redrawn (kernel)", f"{ms:.1f} ms",
              "", f"<= {KERNEL_POPULATION_MS:.0f} ms", ms <= KERNEL_POPULATION_MS)
    table.add("population of 1000: curves and percentiles alone, no drawing (kernel)",
              f"{1000 * median_seconds(crowd_numbers, repeat):.1f} ms")
    for name, action, is_plot in (
        ("occupancy threshold -> plasma/occupancy timeline redrawn (kernel)", set_threshold, True),
        ("half-life slider -> decay plot redrawn (kernel)", set_half_life, True),
        ("concentration slider -> occupancy plot redrawn (kernel)", set_conc, True),
        ("weight slider -> dose, volume and rate text (kernel)", set_weight, False),
    ):
        ms = 1000 * median_seconds(action, repeat)
        if is_plot:
            table.add(name, f"{ms:.1f} ms", "", f"<= {KERNEL_PLOT_MS:.0f} ms", ms <= KERNEL_PLOT_MS)
        else:
            table.add(name, f"{ms:.1f} ms")


def browser(table: Table, presses: int) -> None:
    """Key press on a slider -> new dose text / new plot on screen, in JupyterLab in Chromium."""
    from browser_helpers import (
        JupyterLab,
        browser_missing,
        dose_line,
        key_to_screen_ms,
        open_browser,
        open_notebook,
        run_all,
    )

    missing = browser_missing()
    if missing:
        table.add("browser rows", "not measured", missing)
        return
    with tempfile.TemporaryDirectory() as scratch, JupyterLab(Path(scratch)) as lab, open_browser() as (page, watch):
        start = time.perf_counter()
        open_notebook(page, lab, "notebooks/03_pharmacokinetics.ipynb")
        opened = time.perf_counter() - start
        run_all(page)
        page.locator(".t-dose-calculator .t-dose-mg").wait_for()
        page.locator(".t-decay-plot").wait_for()
        ran = time.perf_counter() - start - opened
        table.add("JupyterLab: open the PK lesson until its kernel is idle", f"{opened:.1f} s")
        table.add("JupyterLab: Run All on the PK lesson until widgets show", f"{ran:.1f} s")

        weight = 70
        text_ms = []
        for i in range(presses):
            key, step = ("ArrowRight", 1) if i % 2 == 0 else ("ArrowLeft", -1)
            weight += step
            text_ms.append(key_to_screen_ms(page, ".t-weight [role=slider]", ".t-dose-result", key, dose_line(weight)))
        plot_ms = [
            key_to_screen_ms(page, ".t-half-life [role=slider]", ".t-decay-plot",
                             "ArrowRight" if i % 2 == 0 else "ArrowLeft")
            for i in range(presses)
        ]
        assert not watch.problems(), watch.problems()
    ms = statistics.median(text_ms)
    table.add("weight slider key press -> new dose text on screen (browser)", f"{ms:.0f} ms",
              f"p90 {statistics.quantiles(text_ms, n=10)[-1]:.0f} ms", f"<= {BROWSER_TEXT_MS:.0f} ms",
              ms <= BROWSER_TEXT_MS)
    ms = statistics.median(plot_ms)
    table.add("half-life slider key press -> new plot on screen (browser)", f"{ms:.0f} ms",
              f"p90 {statistics.quantiles(plot_ms, n=10)[-1]:.0f} ms", f"<= {BROWSER_PLOT_MS:.0f} ms",
              ms <= BROWSER_PLOT_MS)


def fresh_setup(table: Table) -> None:
    """``./course setup`` on a clean clone of the committed course, with no pip cache."""
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "course"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
        env["PIP_NO_CACHE_DIR"] = "1"
        start = time.perf_counter()
        subprocess.run(["./course", "setup"], cwd=clone, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        size = subprocess.run(["du", "-sh", str(clone / ".venv")], capture_output=True, text=True).stdout.split()[0]
    table.add("fresh setup: ./course setup on a clean clone, no pip cache", f"{seconds:.0f} s", f"environment {size}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per notebook measurement (median reported)")
    parser.add_argument("--students", type=int, default=3, help="correct submissions graded per quiz")
    parser.add_argument("--class-size", type=int, default=CLASS_SIZE, help="submissions in the parallel-grading class")
    parser.add_argument("--presses", type=int, default=21, help="slider key presses per browser measurement")
    parser.add_argument("--skip-browser", action="store_true", help="leave out the JupyterLab/Chromium rows")
    parser.add_argument("--skip-setup", action="store_true", help="leave out the fresh-setup row")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)

    table = Table()
    kernel_s = median_seconds(bare_kernel, max(args.repeat, 5))
    table.add("bare kernel start + one cell (nbclient)", f"{kernel_s:.2f} s")
    lessons(table, kernel_s, args.repeat)
    quizzes(table, kernel_s, args.repeat, args.students)
    class_in_parallel(table, args.class_size)
    kernel_widgets(table, repeat=31)
    if not args.skip_browser:
        browser(table, args.presses)
    if not args.skip_setup:
        fresh_setup(table)

    text = table.markdown()
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
