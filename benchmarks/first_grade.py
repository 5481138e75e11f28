"""A learner's first self-grade of a quiz against a later one, in a fresh process, as the course is used.

``./course open`` prepares each quiz's gradebook in the background
(:func:`ketamine_course.grading.here.prepare_course`) and the quiz's first cell
starts loading the grader while the learner answers
(:func:`ketamine_course.grading.here.warm_up`); then the learner runs the grade
cell. Run by ``benchmarks/run.py`` in a process of its own (nothing of the
grader imported yet): prints ``first_s later_s`` for one quiz.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(quiz: str, repeat: int = 3) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import nbformat

    from grading_helpers import solutions, submission
    from ketamine_course.grading import here  # what the grade cell's entry point loads: nothing heavy yet

    with tempfile.TemporaryDirectory() as scratch:
        course = Path(scratch)
        (course / "source").symlink_to(ROOT / "source")
        (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
        notebook = course / f"{quiz}.ipynb"
        nbformat.write(submission(quiz, solutions(quiz)), notebook)
        os.environ["JPY_SESSION_NAME"] = str(notebook)
        import subprocess

        subprocess.run([sys.executable, "-m", "ketamine_course.grading.here", "--prepare", str(course)], check=True,
                       capture_output=True)  # ./course open, in the background
        here.warm_up()  # the quiz's first cell
        here._await_warm_up()  # the learner answers the quiz meanwhile
        start = time.perf_counter()
        here.grade_here()
        first = time.perf_counter() - start
        later = []
        for _ in range(repeat):
            start = time.perf_counter()
            here.grade_here()
            later.append(time.perf_counter() - start)
    print(f"{first:.3f} {statistics.median(later):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
