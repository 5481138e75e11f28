"""The texts of nbgrader's errors that the course reads, to say in words what went wrong (nbgrader raises plain
exceptions).

Checked against the installed nbgrader by ``tests/test_layout.py``: each text
must still occur in nbgrader's source, or the course would stop recognising the
error and fall back to a generic message.
"""

from __future__ import annotations

__all__ = ["NO_NOTEBOOKS", "NO_ASSIGNMENT", "MESSAGES"]

NO_NOTEBOOKS = "No notebooks found"
"""nbgrader's converters, when a submission folder holds no notebook of the expected name."""
NO_ASSIGNMENT = "No assignment with ID"
"""nbgrader's gradebook (``MissingEntry``), when it does not know the quiz."""
MESSAGES = (NO_NOTEBOOKS, NO_ASSIGNMENT)
