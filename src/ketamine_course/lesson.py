"""Helpers the lesson notebooks call: the course map, cited facts and each unit's reference list.

Prose in a lesson cites sources as ``[@reference_id]`` (several: ``[@a; @b]``).
:func:`references` reads the notebook, collects the ids in the order they are
first cited, and renders them from ``data/references.csv``, flagging any that
are not fully verified.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .data import format_reference, load_table

__all__ = ["Unit", "UNITS", "CITATION", "cited_ids", "references", "course_map", "fact", "table"]

CITATION = re.compile(r"\[(@[a-z0-9_]+(?:;\s*@[a-z0-9_]+)*)\]")
"""A citation in lesson prose: ``[@id]`` or ``[@id1; @id2]``."""


@dataclass(frozen=True)
class Unit:
    """One unit of the course: its lesson and its quiz."""

    number: int
    title: str
    minutes: int
    notebook: str
    quiz: str

    @property
    def quiz_path(self) -> str:
        """The student version of the quiz, relative to ``notebooks/``."""
        return f"../release/{self.quiz}/{self.quiz}.ipynb"


UNITS: tuple[Unit, ...] = (
    Unit(1, "History: from anaesthetic to antidepressant", 30, "01_history.ipynb", "quiz01_history"),
    Unit(2, "Mechanism: the NMDA receptor and beyond", 45, "02_nmda_mechanism.ipynb", "quiz02_mechanism"),
    Unit(3, "Pharmacokinetics: doses, routes and curves", 60, "03_pharmacokinetics.ipynb", "quiz03_pharmacokinetics"),
    Unit(4, "Clinical evidence: what the trials show", 50, "04_clinical_evidence.ipynb", "quiz04_evidence"),
    Unit(5, "Safety and regulation", 40, "05_safety_regulation.ipynb", "quiz05_safety"),
)
"""The course map. Minutes are the course's estimate for reading, running and the exercises (quiz excluded)."""


def _markdown(text: str):
    from IPython.display import Markdown

    return Markdown(text)


def cited_ids(notebook: str | Path) -> list[str]:
    """Reference ids cited in a notebook's Markdown cells, in order of first citation."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    seen: dict[str, None] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for group in CITATION.findall(text):
            for part in group.split(";"):
                seen.setdefault(part.strip().lstrip("@"), None)
    return list(seen)


def references(notebook: str | Path):
    """The numbered reference list of a lesson, rendered from ``data/references.csv``."""
    ids = cited_ids(notebook)
    lines = [f"{i}. `{ref_id}`: {format_reference(ref_id)}" for i, ref_id in enumerate(ids, start=1)]
    return _markdown("\n".join(lines) if lines else "_No sources cited._")


def course_map():
    """The course map as a Markdown table: unit, lesson, quiz and estimated time."""
    rows = ["| Unit | Lesson | Time | Quiz |", "|---|---|---|---|"]
    for unit in UNITS:
        rows.append(
            f"| {unit.number} | [{unit.title}]({unit.notebook}) | {unit.minutes} min | [{unit.quiz}]({unit.quiz_path}) |"
        )
    total = sum(u.minutes for u in UNITS)
    rows.append(f"| | **Whole course** | **{total // 60} h {total % 60:02d} min** | |")
    return _markdown("\n".join(rows))


def fact(fact_id: str):
    """A cited statement from ``data/facts.csv``, flagged when not fully verified."""
    row = load_table("facts").row(fact_id)
    ids = row["source_id"].split(";")  # load_table has already checked that each id exists
    flag = ""
    if row["verified"] in ("partial", "no"):
        flag = f" **Not fully verified:** {row['note'] or 'the source row does not say what is missing.'}"
    return _markdown(f"> {row['statement']} [{'; '.join(ids)}]{flag}")


def table(name: str, columns: list[str], **equal: object):
    """Selected columns of a data table (rows filtered by ``column=value``) as a pandas DataFrame."""
    import pandas as pd

    rows = load_table(name).where(**equal) if equal else list(load_table(name))
    return pd.DataFrame([{c: r[c] for c in columns} for r in rows]).fillna("")
