"""nbgrader's cell metadata schema: whether a submitted cell's nbgrader metadata is one nbgrader can read."""

from __future__ import annotations

import copy
import functools
from typing import Any

import nbformat

__all__ = ["valid_metadata"]


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
