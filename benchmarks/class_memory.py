"""Peak memory and live kernels while ``ketamine-grade class`` grades a class of N correct quiz03 submissions.

Usage: ``.venv/bin/python benchmarks/class_memory.py N [--jobs J]``.

Memory is the proportional set size (PSS) summed over the grader, its workers
and every kernel they start: pages shared between processes (a forked
worker's copy of the grader's libraries) are counted once, split between
them, so the sum is what the class really costs. It is sampled every 0.1 s by
a separate process (so sampling takes no time from the grader). "Flat" means
the peak over the last quarter of the run is no higher than over the first
quarter, give or take one kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
QUIZ = "quiz03_pharmacokinetics"

SAMPLER = r"""
import json, os, sys, time, psutil
root = psutil.Process(int(sys.argv[1]))
kernel_folders = sys.argv[3]
samples, kernels = [], 0
while root.is_running() and sys.stdin.readable():
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass
    alive = sum(1 for name in os.listdir(kernel_folders) if name.startswith("ketamine-kernel-"))
    samples.append(total)
    kernels = max(kernels, alive)
    try:
        with open(sys.argv[2]) as stop:
            if stop.read() == "stop":
                break
    except FileNotFoundError:
        pass
    time.sleep(0.1)
print(json.dumps({"samples": samples, "kernels": kernels}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("students", type=int)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    from grading_helpers import make_course, solutions, submission, submit
    from ketamine_course.grading import grade_class

    with tempfile.TemporaryDirectory() as scratch:
        kernels = Path(scratch) / "kernels"  # each kernel's private folder lives from its start until it is gone
        kernels.mkdir()
        os.environ["TMPDIR"] = str(kernels)
        tempfile.tempdir = None
        course = make_course(Path(scratch), QUIZ)
        answers = submission(QUIZ, solutions(QUIZ))
        for number in range(args.students):
            submit(course, QUIZ, f"s{number:03d}", answers)
        flag = Path(scratch) / "stop"
        sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, str(os.getpid()), str(flag), str(kernels)],
                                   stdout=subprocess.PIPE, text=True)
        start = time.perf_counter()
        results = grade_class(course, QUIZ, db_url=f"sqlite:///{course / 'gradebook.db'}", progress=None,
                              jobs=args.jobs)
        seconds = time.perf_counter() - start
        flag.write_text("stop")
        found = json.loads(sampler.communicate(timeout=60)[0])
    assert all(r.score == r.max_score for r in results), [r.error for r in results if r.error][:3]
    samples = [s / 1024**2 for s in found["samples"]]
    quarter = max(1, len(samples) // 4)
    print(
        f"{args.students} submissions, --jobs {args.jobs}: {seconds:.0f} s; peak memory {max(samples):.0f} MB "
        f"(first quarter {max(samples[:quarter]):.0f} MB, last quarter {max(samples[-quarter:]):.0f} MB); "
        f"at most {found['kernels']} kernel(s) alive at once"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
