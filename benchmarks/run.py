"""Course benchmarks: what learners and instructors feel, measured on this machine.

Run with ``./course bench`` (or ``.venv/bin/python benchmarks/run.py``). Prints a
Markdown table of medians. Compare ratios measured in one run: absolute times
on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


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


def grading_seconds(quiz: str, students: int) -> dict[str, float]:
    """Median seconds to grade one submission: the course's in-process command, nbgrader's CLI, and plain nbclient."""
    import os
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from grading_helpers import make_course, solutions, submission, submit

    from ketamine_course.grading import grade_class

    with tempfile.TemporaryDirectory() as scratch:
        course = make_course(Path(scratch), quiz)
        answers = submission(quiz, solutions(quiz))
        names = [f"s{i:02d}" for i in range(students)]
        for name in names:
            submit(course, quiz, name, answers)
        db = f"sqlite:///{course / 'gradebook.db'}"
        in_process = statistics.median(r.seconds for r in grade_class(course, quiz, names, db_url=db, progress=None))
        unsandboxed = statistics.median(r.seconds for r in grade_class(course, quiz, names, db_url=db, progress=None, sandbox=False))
        (course / "nbgrader_config.py").write_text(
            f"c = get_config()\nload_subconfig({str(ROOT / 'nbgrader_config.py')!r})\n"
            f"c.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.db_url = {db!r}\n"
        )
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        cli_times = []
        for name in names[:3]:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nbgrader", "autograde", quiz, "--student", name, "--force"],
                           cwd=course, env=env, check=True, capture_output=True)
            cli_times.append(time.perf_counter() - start)
        path = course / "submitted" / names[0] / quiz / f"{quiz}.ipynb"
        nbclient_s = median_seconds(lambda: execute_notebook(path), 3)
    return {"in_process": in_process, "unsandboxed": unsandboxed, "cli": statistics.median(cli_times), "nbclient": nbclient_s}


def widget_update_ms(repeat: int) -> dict[str, float]:
    from ketamine_course.widgets import DecayExplorer, DoseCalculator, OccupancyExplorer

    decay, occupancy, dose = DecayExplorer(), OccupancyExplorer(), DoseCalculator()
    values = iter(range(10**6))

    def set_half_life() -> None:
        decay.half_life_slider.value = 1.0 + 0.1 * (next(values) % 100)

    def set_conc() -> None:
        occupancy.conc_slider.value = 10.0 + next(values) % 1000

    def set_weight() -> None:
        dose.weight_slider.value = 40 + next(values) % 100

    return {
        "half-life slider -> decay plot redrawn (kernel)": 1000 * median_seconds(set_half_life, repeat),
        "concentration slider -> occupancy plot redrawn (kernel)": 1000 * median_seconds(set_conc, repeat),
        "weight slider -> dose, volume, rate text (kernel)": 1000 * median_seconds(set_weight, repeat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per notebook measurement (median reported)")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []

    kernel_s = median_seconds(bare_kernel, args.repeat)
    rows.append(("bare kernel start + one cell (nbclient)", f"{kernel_s:.2f} s", ""))
    total = 0.0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        seconds = median_seconds(lambda: execute_notebook(path), args.repeat)
        total += seconds
        rows.append((f"execute {path.name}", f"{seconds:.2f} s", f"{seconds / kernel_s:.1f}x bare kernel"))
    rows.append(("whole course (sum of lessons)", f"{total:.2f} s", ""))
    quiz = "quiz03_pharmacokinetics"
    grades = grading_seconds(quiz, students=5)
    rows.append((f"execute {quiz} (a correct submission) with nbclient", f"{grades['nbclient']:.2f} s", f"{grades['nbclient'] / kernel_s:.2f}x bare kernel (target <= 1.5x)"))
    rows.append(("grade one submission: ketamine-grade class (in process)", f"{grades['in_process']:.2f} s", f"{grades['in_process'] / grades['nbclient']:.2f}x nbclient (target <= 1.2x)"))
    rows.append(("grade one submission: ketamine-grade class --unsandboxed", f"{grades['unsandboxed']:.2f} s", f"isolation adds {grades['in_process'] - grades['unsandboxed']:+.2f} s"))
    rows.append(("grade one submission: nbgrader autograde (command line, sandboxed)", f"{grades['cli']:.2f} s", f"{grades['cli'] / grades['nbclient']:.2f}x nbclient"))
    for name, ms in widget_update_ms(repeat=31).items():
        target = "target <= 25 ms" if "plot" in name else ""
        rows.append((name, f"{ms:.1f} ms", target))

    print("| measurement | median | note |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
