"""nbgrader's cell metadata schema: whether a submitted cell's nbgrader metadata is one nbgrader can read."""

from __future__ import annotations

import copy
import functools
from typing import Any

import nbformat

__all__ = ["valid_metadata", "validate_with_checked_schema"]


@functools.lru_cache(maxsize=1)
def _schema() -> tuple[int, Any, Any]:
    """nbgrader's current schema version, its upgrader and a validator, checked once (``jsonschema.validate``
    re-checks the schema per call)."""
    from jsonschema.validators import validator_for
    from nbgrader.nbgraderformat import MetadataValidator

    upgrader = MetadataValidator()
    schema = upgrader.schema
    checker = validator_for(schema)
    checker.check_schema(schema)
    return int(MetadataValidator.schema_version), upgrader, checker(schema)


def valid_metadata(meta: object) -> bool:
    """Whether a cell's nbgrader metadata passes nbgrader's own checks.

    Metadata of an older schema version counts as valid when nbgrader's own
    upgrade of it validates (so a schema bump in nbgrader never strips the
    cells of a quiz released before it); a newer version than nbgrader knows,
    or anything that does not validate, does not.
    """
    if not isinstance(meta, dict) or not isinstance(meta.get("grade_id", ""), str):
        return False
    current, upgrader, validator = _schema()
    version = meta.get("schema_version", 0)
    if type(version) is not int or not 0 <= version <= current:
        return False
    if version < current:
        cell = nbformat.v4.new_code_cell(metadata={"nbgrader": copy.deepcopy(meta)})
        try:
            meta = dict(upgrader.upgrade_cell_metadata(cell).metadata["nbgrader"])
        except Exception:  # nbgrader could not upgrade it: not metadata it can read
            return False
    return bool(validator.is_valid(meta))


def validate_with_checked_schema() -> None:
    """Make nbgrader's cell metadata validator (``CheckCellMetadata``) use :func:`_schema`'s validator (idempotent).

    nbgrader's ``BaseMetadataValidator.validate_cell`` calls
    ``jsonschema.validate``, which checks the schema itself again for every
    cell (twice per cell per submission). The replacement keeps nbgrader's
    own version checks and raises the same ``ValidationError`` on the same
    metadata; for another schema version than the current one it calls
    nbgrader's own method.
    """
    from nbgrader.nbgraderformat.common import BaseMetadataValidator

    original = BaseMetadataValidator.validate_cell
    if getattr(original, "_ketamine_course", False):
        return

    @functools.wraps(original)
    def validate_cell(self: Any, cell: Any) -> None:
        current, _, validator = _schema()
        meta = cell.metadata.get("nbgrader") if "nbgrader" in cell.metadata else None
        if (
            meta is None or getattr(self, "schema_version", None) != current
            or meta.get("schema_version", 0) != current
        ):
            original(self, cell)
            return
        validator.validate(meta)

    validate_cell._ketamine_course = True  # type: ignore[attr-defined]
    BaseMetadataValidator.validate_cell = validate_cell
