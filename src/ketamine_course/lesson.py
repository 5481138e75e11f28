"""The lessons' readable text generated from ``data/``: course map, cited facts, tables, references, citations.

A learner opens a lesson before running anything, and notebooks are committed
without outputs, so what must be read first lives in Markdown cells that are
*generated* from the data tables (one source for each fact) and kept in sync
by :func:`sync_notebook` (``python -m ketamine_course.lesson notebooks/*.ipynb``;
a test fails when a notebook is out of date with ``data/``):

* a Markdown cell whose metadata holds ``{"ketamine_course": {"generated": SPEC}}``
  is rewritten from SPEC (see :func:`render`): the disclaimer, the course map,
  a unit's heading (title, time, quiz link) and its closing links (quiz, next
  unit), both from the course map (``data/course.toml``), facts from
  ``facts.csv``, a table's rows, the unit's reference list;
* in every other Markdown cell, a citation written ``[@id]`` (several:
  ``[@a; @b]``) becomes a readable author-year link to the source,
  ``([Zanos et al. 2018](https://doi.org/... "@zanos2018"))``; the id stays in
  the link's title, so re-syncing renders it again from ``references.csv``.

Tables are Markdown, never truncated, and each row's ``source_id`` is shown as
author-year links too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .data import format_reference, load_table, reference
from .manifest import Unit, units

__all__ = [
    "CITATION",
    "GENERATED",
    "UNITS",
    "Unit",
    "cited_ids",
    "course_map",
    "fact",
    "references",
    "render",
    "render_citations",
    "short_citation",
    "sync_notebook",
    "table",
]

CITATION = re.compile(r"\[(@[a-z0-9_]+(?:;\s*@[a-z0-9_]+)*)\]")
"""A citation as written in lesson prose: ``[@id]`` or ``[@id1; @id2]``."""

_LINK = r'\[[^\]]*\]\([^)\s]*\s+"@[a-z0-9_]+"\)'
CITATION_LINKS = re.compile(rf"\(({_LINK}(?:; {_LINK})*)\)")
"""A citation as rendered: author-year links in parentheses, each with its id as the link title."""
_LINK_ID = re.compile(r'"@([a-z0-9_]+)"\)')

GENERATED = "ketamine_course"
"""The cell-metadata key of a generated Markdown cell: ``{"ketamine_course": {"generated": SPEC}}``."""


UNITS: tuple[Unit, ...] = units()
"""The course's units, in order, from the course map (``data/course.toml``, :mod:`ketamine_course.manifest`)."""


def _markdown(text: str):
    from IPython.display import Markdown

    return Markdown(text)


def _cited_in(text: str) -> list[str]:
    """Reference ids cited in Markdown text, written or rendered, in order of appearance."""
    found = []
    for match in re.finditer(rf"{CITATION.pattern}|{CITATION_LINKS.pattern}", text):
        if match.group(1):
            found += [part.strip().lstrip("@") for part in match.group(1).split(";")]
        else:
            found += _LINK_ID.findall(match.group(0))
    return found


def _is_generated(cell: dict, kind: str | None = None) -> bool:
    spec = cell.get("metadata", {}).get(GENERATED, {}).get("generated")
    return spec is not None and (kind is None or kind in spec)


def cited_ids(notebook: str | Path) -> list[str]:
    """Reference ids cited in a notebook's Markdown (prose, facts and tables), in order of first citation."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    seen: dict[str, None] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown" or _is_generated(cell, "references"):
            continue
        for reference_id in _cited_in("".join(cell["source"])):
            seen.setdefault(reference_id, None)
    return list(seen)


# --------------------------------------------------------------------------
# Citations
# --------------------------------------------------------------------------


def _surname(author: str) -> str:
    """``Zarate CA Jr`` -> ``Zarate``; ``van Velzen M`` -> ``van Velzen``; an organisation is kept whole."""
    person = re.match(r"^(.+?)\s+[A-Z]{1,3}(?:\s+Jr)?$", author)
    return person.group(1) if person else author


def short_citation(reference_id: str) -> str:
    """The author-year label of a reference: ``Domino 1965`` style for one author, ``Lodge and Mercier 2015``,
    ``Zanos et al. 2018``.

    >>> short_citation("lodge2015"), short_citation("zanos2018"), short_citation("ema_spravato")
    ('Lodge and Mercier 2015', 'Zanos et al. 2018', 'European Medicines Agency 2019')
    """
    ref = reference(reference_id)
    authors = re.sub(r"\s*\([^)]*\)", "", ref["authors"]).strip()
    names = [n.strip() for n in re.split(r"[,;]", authors) if n.strip() and n.strip() != "et al."]
    if not names:
        return f"{ref['publisher']} {ref['year']}"
    if len(names) > 2 or "et al." in authors:
        return f"{_surname(names[0])} et al. {ref['year']}"
    return f"{' and '.join(_surname(n) for n in names)} {ref['year']}"


def _link(reference_id: str) -> str:
    ref = reference(reference_id)
    target = f"https://doi.org/{ref['doi']}" if ref["doi"] else (ref["url"] or "#References")
    return f'[{short_citation(reference_id)}]({target} "@{reference_id}")'


def _links(reference_ids: list[str]) -> str:
    return "(" + "; ".join(_link(i) for i in reference_ids) + ")"


def render_citations(markdown: str) -> str:
    """Every citation in ``markdown``, written ``[@id]`` or already rendered, as author-year links from
    ``references.csv``.

    >>> render_citations("NMDA block [@lodge2015].")
    'NMDA block ([Lodge and Mercier 2015](https://doi.org/10.1111/bph.13222 "@lodge2015")).'
    >>> render_citations(render_citations("NMDA block [@lodge2015].")) == render_citations("NMDA block [@lodge2015].")
    True
    """
    written = CITATION_LINKS.sub(
        lambda m: "[" + "; ".join(f"@{i}" for i in _LINK_ID.findall(m.group(0))) + "]", markdown
    )
    return CITATION.sub(lambda m: _links([part.strip().lstrip("@") for part in m.group(1).split(";")]), written)


# --------------------------------------------------------------------------
# Generated Markdown
# --------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A table value as Markdown table text: numbers as written, no line breaks or stray pipes, never cut."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text.replace("\n", " ").replace("|", "\\|")


def _fact_markdown(fact_id: str) -> str:
    row = load_table("facts").row(fact_id)
    flag = ""
    if row["verified"] in ("partial", "no"):
        flag = f" **Not fully verified:** {row['note']}" if row["note"] else " **Not fully verified.**"
    return f"> {row['statement']} {_links(row['source_id'].split(';'))}{flag}"


def _table_markdown(spec: dict[str, Any]) -> str:
    """Rows of a data table as a Markdown table (see :func:`render` for the spec)."""
    rows = list(load_table(spec["table"]))
    for column, value in spec.get("where", {}).items():
        rows = [r for r in rows if r[column] == value]
    for column, pattern in spec.get("match", {}).items():
        rows = [r for r in rows if re.search(pattern, str(r[column] or ""))]
    for column, pattern in spec.get("exclude", {}).items():
        rows = [r for r in rows if not re.search(pattern, str(r[column] or ""))]
    for column, wanted in spec.get("rows", {}).items():
        rows = [r for r in rows if r[column] in wanted]
    columns = spec["columns"]
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_links(row[c].split(";")) if c == "source_id" else _cell_text(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _course_map_markdown() -> str:
    rows = ["| Unit | Lesson | Time | Quiz |", "|---|---|---|---|"]
    for unit in UNITS:
        rows.append(
            f"| {unit.number} | [{unit.title}]({unit.notebook}) | {unit.minutes} min "
            f"| [{unit.quiz}]({unit.quiz_path}) |"
        )
    total = sum(u.minutes for u in UNITS)
    rows.append(f"| | **Whole course** | **{total // 60} h {total % 60:02d} min** | |")
    return "\n".join(rows)


def _unit(number: int) -> Unit:
    found = [unit for unit in UNITS if unit.number == number]
    if not found:
        raise ValueError(f"unit {number} is not in the course map (data/course.toml)")
    return found[0]


def _short_title(unit: Unit) -> str:
    return unit.title.split(":", 1)[0]


def _unit_header_markdown(number: int) -> str:
    unit = _unit(number)
    return (
        f"# Unit {unit.number}. {unit.title}\n\n"
        f"**Time:** {unit.minutes} min  ·  **Quiz:** [{unit.quiz}]({unit.quiz_path})"
    )


def _unit_footer_markdown(number: int) -> str:
    unit = _unit(number)
    later = [u for u in UNITS if u.number == number + 1]
    if not later:
        return f"**Quiz:** [{unit.quiz}]({unit.quiz_path})  ·  **Back to the start:** [course map](00_start_here.ipynb)"
    return (
        f"**Quiz:** [{unit.quiz}]({unit.quiz_path})  ·  "
        f"**Next:** [Unit {later[0].number}: {_short_title(later[0])}]({later[0].notebook})"
    )


def _references_markdown(reference_ids: list[str]) -> str:
    lines = [f"{i}. {format_reference(ref_id)} `{ref_id}`" for i, ref_id in enumerate(reference_ids, start=1)]
    return "\n".join(lines) if lines else "_No sources cited._"


def render(spec: dict[str, Any], cited: list[str] | None = None) -> str:
    """The Markdown of a generated cell.

    ``spec`` is one of: ``{"disclaimer": true}``; ``{"course_map": true}``;
    ``{"unit_header": N}`` / ``{"unit_footer": N}`` (unit N's heading, its closing links);
    ``{"facts": [fact_id, ...]}``; ``{"references": true}`` (the ``cited`` ids);
    ``{"table": name, "columns": [...], "where": {col: value}, "match": {col: regex},
    "exclude": {col: regex}, "rows": {col: [values]}}`` (filters optional).
    """
    if spec.get("disclaimer"):
        from .dosing import DISCLAIMER

        return f"> **{DISCLAIMER.split('. ', 1)[0]}.** {DISCLAIMER.split('. ', 1)[1]}"
    if spec.get("course_map"):
        return _course_map_markdown()
    if "unit_header" in spec:
        return _unit_header_markdown(int(spec["unit_header"]))
    if "unit_footer" in spec:
        return _unit_footer_markdown(int(spec["unit_footer"]))
    if "facts" in spec:
        return "\n>\n".join(_fact_markdown(f) for f in spec["facts"])
    if spec.get("references"):
        return _references_markdown(cited or [])
    if "table" in spec:
        return _table_markdown(spec)
    raise ValueError(f"unknown generated-cell spec: {spec}")


def sync_notebook(path: str | Path, write: bool = True) -> bool:
    """Regenerate a notebook's generated cells and citation links from ``data/``; True if anything changed.

    With ``write=False`` nothing is written (the test that the committed
    notebooks are in sync uses this).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and not _is_generated(cell):
            cell["source"] = _source_lines(render_citations("".join(cell["source"])))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and _is_generated(cell) and not _is_generated(cell, "references"):
            cell["source"] = _source_lines(render(cell["metadata"][GENERATED]["generated"]))
    cited: dict[str, None] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and not _is_generated(cell, "references"):
            for reference_id in _cited_in("".join(cell["source"])):
                cited.setdefault(reference_id, None)
    for cell in nb["cells"]:
        if _is_generated(cell, "references"):
            cell["source"] = _source_lines(render(cell["metadata"][GENERATED]["generated"], list(cited)))
    new_text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new_text == text:
        return False
    if write:
        path.write_text(new_text, encoding="utf-8")
    return True


def _source_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


# --------------------------------------------------------------------------
# For code cells (the same text, shown by running a cell)
# --------------------------------------------------------------------------


def references(notebook: str | Path):
    """The numbered reference list of a lesson, rendered from ``data/references.csv``."""
    return _markdown(_references_markdown(cited_ids(notebook)))


def course_map():
    """The course map as a Markdown table: unit, lesson, quiz and estimated time."""
    return _markdown(_course_map_markdown())


def fact(fact_id: str):
    """A cited statement from ``data/facts.csv``, flagged when not fully verified."""
    return _markdown(_fact_markdown(fact_id))


def table(name: str, columns: list[str], **equal: object):
    """Selected columns of a data table (rows filtered by ``column=value``) as a Markdown table, never truncated."""
    return _markdown(_table_markdown({"table": name, "columns": columns, "where": equal}))


def main(argv: list[str] | None = None) -> int:
    """``python -m ketamine_course.lesson NOTEBOOK...``: regenerate each notebook's text from ``data/``."""
    import sys

    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print("usage: python -m ketamine_course.lesson notebooks/*.ipynb", file=sys.stderr)
        return 2
    for path in paths:
        if sync_notebook(path):
            print(f"regenerated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
