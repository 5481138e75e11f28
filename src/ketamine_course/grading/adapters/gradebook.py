"""nbgrader's gradebook, opened once per process: one SQLAlchemy engine per database, shared by every ``Gradebook``.

nbgrader's ``Gradebook.__init__`` calls ``sqlalchemy.create_engine`` each
time it is opened, and autograding one submission opens it about fifteen
times: each new engine starts with an empty statement cache, so every query
is compiled again (a third of the grader's time outside the kernel).
:func:`share_engines` makes ``nbgrader.api.create_engine`` return one engine
per database URL per process. ``Gradebook.close`` still calls
``engine.dispose()``, which closes the idle connections (they reopen on the
next query) and keeps the compiled statements; connections another open
``Gradebook`` holds stay its own until it closes them (SQLAlchemy's rule for
``dispose``). A forked worker makes engines of its own (the key holds the
process id): a connection never crosses a fork.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["share_engines", "shared_engine"]

_ENGINES: dict[tuple[int, str, str], Any] = {}
_INSTALLED = "_ketamine_course_shared_engines"


def shared_engine(url: Any, **options: Any) -> Any:
    """``sqlalchemy.create_engine``, returning this process's engine for the same URL and options."""
    from sqlalchemy import create_engine

    key = (os.getpid(), str(url), repr(sorted(options.items())))
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = create_engine(url, **options)
    return engine


def share_engines() -> None:
    """Make nbgrader's gradebook reuse one engine per database in this process (idempotent)."""
    import nbgrader.api

    if getattr(nbgrader.api, _INSTALLED, False):
        return
    nbgrader.api.create_engine = shared_engine
    setattr(nbgrader.api, _INSTALLED, True)
