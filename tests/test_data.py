"""The cited tables: every table validates, every source resolves, and corruption is caught with a precise message."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from ketamine_course import data
from ketamine_course.data import DataError, load_table

ROOT = Path(__file__).resolve().parents[1]


def test_every_table_validates_and_is_not_empty() -> None:
    counts = data.validate_all()
    assert set(counts) == set(data.SCHEMAS)
    assert all(n > 0 for n in counts.values())


def test_every_csv_in_data_has_a_schema_and_a_source_column() -> None:
    for path in (ROOT / "data").glob("*.csv"):
        assert path.stem in data.SCHEMAS, path
        header = next(csv.reader(path.open(encoding="utf-8")))
        assert "source_id" in header or path.stem == "references", path


def test_every_source_id_resolves_to_a_reference() -> None:
    ids = {r["id"] for r in load_table("references")}
    for name in data.table_names()[1:]:
        for row in load_table(name):
            for source in row["source_id"].split(";"):
                assert source in ids, (name, source)


def test_references_have_a_link_or_are_marked_unverified() -> None:
    for ref in load_table("references"):
        assert ref["doi"] or ref["url"] or ref["verified"] in ("partial", "no", "derived"), ref["id"]


def test_every_reference_is_cited_somewhere() -> None:
    """No dead entries: each reference backs at least one value."""
    cited = {s for name in data.table_names()[1:] for row in load_table(name) for s in row["source_id"].split(";")}
    unused = {r["id"] for r in load_table("references")} - cited
    assert not unused, f"references not cited by any table: {sorted(unused)}"


def test_unverified_facts_from_the_fact_sheet_stay_flagged() -> None:
    """Values the vetted fact sheet calls partial or unverified are not promoted to verified here."""
    assert load_table("trials").row("zarate2006")["verified"] == "partial"
    assert load_table("timeline").row("spravato_monotherapy")["verified"] == "no"
    assert load_table("pk_models").row("domino_3cmt", "k10")["verified"] == "no"
    assert load_table("labelled_doses").row("ed_sedation_im")["verified"] == "partial"
    for row in load_table("nmda_affinity"):
        if row["compound"].startswith("racemic"):
            assert row["verified"] == "partial"


def test_key_values_match_the_fact_sheet() -> None:
    """Spot checks against ../shared/facts (the vetted source) for the numbers the course leans on."""
    assert load_table("labelled_doses").row("ketalar_iv_induction")["dose_low"] == 1.0
    assert load_table("labelled_doses").row("ketalar_iv_induction")["dose_high"] == 4.5
    assert load_table("labelled_doses").row("ketalar_im_induction")["dose_high"] == 13.0
    assert load_table("routes").row("intranasal_esketamine")["bioavailability_fraction"] == 0.48
    assert load_table("concentration_bands").row("antidepressant_peak")["low_ng_per_ml"] == 185
    assert load_table("nmda_affinity").row("S-ketamine")["ki_um"] == 0.30
    assert load_table("timeline").row("schedule_iii")["date"] == "1999-08-12"
    assert load_table("adverse_events").row("dissociation", load_table("adverse_events").rows[0]["population"])["drug_pct"] == 41


def test_format_reference_and_cite() -> None:
    text = data.format_reference("zanos2018")
    assert "https://doi.org/10.1124/pr.117.015198" in text
    assert "not fully verified" in data.format_reference("domino1984")
    assert data.cite("zanos2018;kamp2020") == "[zanos2018; kamp2020]"
    with pytest.raises(KeyError):
        data.cite("nobody1999")


def test_rows_are_read_only() -> None:
    row = load_table("routes").row("oral")
    with pytest.raises(TypeError):
        row["bioavailability_fraction"] = 0.9  # type: ignore[index]


# --------------------------------------------------------------------------
# Corrupted copies: each fault is reported with file, row and column.
# --------------------------------------------------------------------------


def _rewrite(path: Path, edit) -> None:
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    edit(rows)
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _set_cell(table: str, row_index: int, column: str, value: str):
    def edit(rows: list[list[str]]) -> None:
        rows[row_index][rows[0].index(column)] = value

    return edit


# One realistic corruption of each table: (table, column, bad value, expected words in the message).
CELL_FAULTS = [
    ("references", "year", "twenty", "not a whole number"),
    ("timeline", "category", "folklore", "is not one of"),
    ("routes", "bioavailability_fraction", "1.3", "above the maximum"),
    ("pk_models", "unit", "mL", "is not a unit for"),
    ("concentration_bands", "low_ng_per_ml", "99999", "above the maximum"),
    ("labelled_doses", "dose_unit", "ug/kg", "does not match dose_basis"),
    ("vials", "dilute_before_iv", "maybe", "is not True or False"),
    ("trials", "effect", "42", "outside its interval"),
    ("adverse_events", "drug_pct", "75", "disagrees with"),
    ("nmda_affinity", "ki_um", "nan", "not a finite number"),
    ("constants", "value", "", "is empty but required"),
]


@pytest.mark.parametrize(("table", "column", "bad", "words"), CELL_FAULTS, ids=[f[0] for f in CELL_FAULTS])
def test_bad_cell_is_reported_with_file_row_and_column(data_copy: Path, table, column, bad, words) -> None:
    # Row 1 of the file is the first data row (line 2); for trials pick a row with an interval.
    index = 3 if table == "trials" else 1
    _rewrite(data_copy / f"{table}.csv", _set_cell(table, index, column, bad))
    with pytest.raises(DataError) as caught:
        load_table(table)
    message = str(caught.value)
    assert message.startswith(f"data/{table}.csv, row {index + 1}, column '{column}'"), message
    assert words in message


@pytest.mark.parametrize("table", list(data.SCHEMAS))
def test_unknown_source_or_duplicate_id_is_reported(data_copy: Path, table: str) -> None:
    path = data_copy / f"{table}.csv"
    if table == "references":
        # A duplicate id.
        _rewrite(path, lambda rows: rows.append(list(rows[1])))
        with pytest.raises(DataError, match=r"data/references.csv, row \d+, column 'id': duplicate id"):
            load_table(table)
        return
    _rewrite(path, _set_cell(table, 1, "source_id", "smith2099"))
    with pytest.raises(DataError, match=rf"data/{table}.csv, row 2, column 'source_id': 'smith2099' is not an id"):
        load_table(table)


@pytest.mark.parametrize("table", list(data.SCHEMAS))
def test_missing_column_is_reported(data_copy: Path, table: str) -> None:
    path = data_copy / f"{table}.csv"
    _rewrite(path, lambda rows: [r.pop() for r in rows])
    with pytest.raises(DataError, match=rf"data/{table}.csv, header: missing column"):
        load_table(table)


def test_short_row_empty_file_and_undefined_table(data_copy: Path) -> None:
    _rewrite(data_copy / "routes.csv", lambda rows: rows[2].pop())
    with pytest.raises(DataError, match=r"data/routes.csv, row 3: has \d+ fields"):
        load_table("routes")
    (data_copy / "vials.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="data/vials.csv: the file is empty"):
        load_table("vials")
    (data_copy / "rumours.csv").write_text("claim\nketamine cures everything\n", encoding="utf-8")
    with pytest.raises(DataError, match="rumours.csv has no schema"):
        data.validate_all()


def test_verified_reference_without_link_is_rejected(data_copy: Path) -> None:
    def edit(rows: list[list[str]]) -> None:
        header = rows[0]
        for row in rows[1:]:
            if row[0] == "zanos2018":
                row[header.index("doi")] = ""
                row[header.index("url")] = ""

    _rewrite(data_copy / "references.csv", edit)
    with pytest.raises(DataError, match=r"references.csv, row \d+, column 'doi': a reference marked verified needs"):
        load_table("references")


def test_malformed_doi_is_rejected(data_copy: Path) -> None:
    _rewrite(data_copy / "references.csv", _set_cell("references", 5, "doi", "doi:10.1/x"))
    with pytest.raises(DataError, match=re.escape("data/references.csv, row 6, column 'doi'")):
        load_table("references")


def test_a_cached_row_cannot_be_changed_in_place() -> None:
    """Tables are cached for the whole process: no in-place change of a row may reach the next reader."""
    row = load_table("constants").row("max_weight_kg")
    before = dict(row)
    changes = [
        lambda r: r.__setitem__("value", 1.0), lambda r: r.__delitem__("value"), lambda r: r.update(value=1.0),
        lambda r: r.setdefault("extra", 1), lambda r: r.pop("value"), lambda r: r.popitem(), lambda r: r.clear(),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="read-only"):
            change(row)
    with pytest.raises(TypeError, match="read-only"):
        row |= {"value": 1.0}  # in-place or: dict's own __ior__ would change the cached row
    assert load_table("constants").row("max_weight_kg") == before
    copy = row | {"value": 1.0}  # a new, changeable dict
    copy["value"] = 2.0
    assert load_table("constants").row("max_weight_kg")["value"] == before["value"]
