"""Guards on what the course claims: a citation may not claim more than its source supports.

* Attribution: a claim citing a source must mention what ``data/citation_scope.csv`` says
  the source is limited to (a rat study says rats; an MK-801 study says MK-801).
* Certainty: a claim may not be worded as established when a source it cites, or the
  fact itself, is only partly verified or unverified.
* Consistency: a fact is never marked better verified than the weakest source it cites.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ketamine_course.data import load_table
from ketamine_course.lesson import CITATION

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Strongest first. 'derived' is arithmetic on cited values: as strong as its inputs, so it does not weaken a fact.
VERIFIED_RANK = {"yes": 3, "derived": 3, "secondary": 2, "partial": 1, "no": 0}

CERTAIN = re.compile(r"\b(established|proven|proved|demonstrated|confirmed|definitely|certainly)\b", re.IGNORECASE)
NEGATED = re.compile(r"\b(not|never|no|nor|un\w*)\s+(been\s+|yet\s+|fully\s+)?$", re.IGNORECASE)


def _cited(text: str) -> list[str]:
    return [part.strip().lstrip("@") for group in CITATION.findall(text) for part in group.split(";")]


def _claims_in(markdown: str) -> list[str]:
    """Each paragraph, list item or table row of lesson prose is one claim."""
    return [line for line in markdown.splitlines() if CITATION.search(line)]


def _lesson_claims() -> list[tuple[str, str]]:
    claims = []
    for path in LESSONS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                claims += [(path.name, line) for line in _claims_in("".join(cell["source"]))]
    return claims


def _table_claims() -> list[tuple[str, str, list[str]]]:
    """Statements in the tables whose text the lessons show: (where, text, cited ids)."""
    out = [(f"facts:{r['fact_id']}", r["statement"], r["source_id"].split(";")) for r in load_table("facts")]
    out += [(f"claims:{r['claim_id']}", r["evidence"], r["source_id"].split(";")) for r in load_table("claims")]
    return out


def attribution_problems(text: str, cited: list[str]) -> list[str]:
    """Reasons a claim over-reaches its sources (empty if it mentions each source's limits)."""
    scope = {r["source_id"]: r for r in load_table("citation_scope")}
    return [
        f"cites {ref_id} but does not mention /{scope[ref_id]['must_mention']}/: {scope[ref_id]['reason']}"
        for ref_id in cited
        if ref_id in scope and not re.search(scope[ref_id]["must_mention"], text, re.IGNORECASE)
    ]


def certainty_problems(text: str, levels: list[str]) -> list[str]:
    """Certainty words (not negated) in a claim resting on a partly verified or unverified source."""
    if min((VERIFIED_RANK[level] for level in levels), default=3) > VERIFIED_RANK["partial"]:
        return []
    return [
        f"says '{m.group(0)}' but rests on a source verified only as {min(levels, key=VERIFIED_RANK.get)}"
        for m in CERTAIN.finditer(text)
        if not NEGATED.search(text[: m.start()])
    ]


def test_the_guards_catch_the_old_mistakes() -> None:
    old = "At sub-anaesthetic doses, ketamine preferentially reduces the firing of fast-spiking GABA interneurons [@homayoun2007]."
    assert attribution_problems(old, _cited(old))
    fixed = "In rats, the NMDA blocker MK-801 (not ketamine) reduced interneuron firing [@homayoun2007]."
    assert not attribution_problems(fixed, _cited(fixed))
    assert certainty_problems("Ketamine was first tested in TRD in 2006, as established by the trial.", ["partial"])
    assert not certainty_problems("An effect on suicide has not been demonstrated.", ["partial"])
    assert not certainty_problems("Unconfirmed citation, illustrative model.", ["no"])


def test_every_scoped_source_exists() -> None:
    references = {r["id"] for r in load_table("references")}
    assert {r["source_id"] for r in load_table("citation_scope")} <= references


@pytest.mark.parametrize(("where", "line"), _lesson_claims(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_lesson_claims_stay_within_their_sources(where, line) -> None:
    cited = _cited(line)
    levels = [load_table("references").row(ref_id)["verified"] for ref_id in cited]
    problems = attribution_problems(line, cited) + certainty_problems(line, levels)
    assert not problems, f"{where}: {line[:120]}...: {problems}"


@pytest.mark.parametrize(("where", "text", "cited"), _table_claims(), ids=lambda v: v if isinstance(v, str) and ":" in v else "")
def test_table_statements_stay_within_their_sources(where, text, cited) -> None:
    levels = [load_table("references").row(ref_id)["verified"] for ref_id in cited]
    if where.startswith("facts:"):
        levels.append(load_table("facts").row(where.split(":", 1)[1])["verified"])
    problems = attribution_problems(text, cited) + certainty_problems(text, levels)
    assert not problems, f"{where}: {problems}"


def test_no_fact_is_better_verified_than_its_weakest_source() -> None:
    too_strong = []
    for row in load_table("facts"):
        weakest = min((load_table("references").row(ref_id)["verified"] for ref_id in row["source_id"].split(";")), key=VERIFIED_RANK.get)
        if VERIFIED_RANK[row["verified"]] > VERIFIED_RANK[weakest]:
            too_strong.append(f"{row['fact_id']} is '{row['verified']}' but cites a '{weakest}' source")
    assert not too_strong, too_strong
