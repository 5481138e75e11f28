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
