"""The adapters to nbgrader's and Jupyter's internals (grading/adapters): versions checked, texts still there, upstream's checks kept."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_nbgrader_still_says_what_the_course_reads() -> None:
    """The texts of nbgrader's errors the course translates into words are still in the installed nbgrader."""
    import nbgrader

    from ketamine_course.grading.adapters.messages import MESSAGES

    source = "\n".join(path.read_text(errors="replace") for path in Path(nbgrader.__file__).parent.rglob("*.py") if "tests" not in path.parts)
    assert all(text in source for text in MESSAGES), [text for text in MESSAGES if text not in source]


def test_another_version_of_nbgrader_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets.config import Config

    from ketamine_course.grading import adapters
    from ketamine_course.grading.config import apply_pipeline

    assert adapters.unsupported() == [], "the installed versions are the supported ones"
    installed = {"nbgrader": "0.10.0", "nbclient": "0.11.0", "jupyter_client": "8.10.0", "nbconvert": "7.17.2", "nbformat": "5.11.1"}
    assert adapters.unsupported(installed) == ["nbgrader is 0.10.0; the grader is written for nbgrader>=0.9.5,<0.10"]
    with pytest.raises(adapters.UnsupportedVersion, match=r"Nothing was graded.*\./course setup"):
        adapters.require_supported(installed)
    monkeypatch.setitem(adapters.SUPPORTED, "nbgrader", ">=0.10,<0.11")  # as if the installed nbgrader were another
    with pytest.raises(adapters.UnsupportedVersion, match="nbgrader is 0.9"):
        apply_pipeline(Config())


def test_a_quiz_released_under_an_older_metadata_schema_keeps_its_cells() -> None:
    """nbgrader's schema version compared for equality would strip every cell of an older release (and score it 0)."""
    from ketamine_course.grading.adapters.schema import valid_metadata

    meta = {"grade": True, "grade_id": "q1_test", "locked": True, "points": 2, "schema_version": 3, "solution": False}
    assert valid_metadata(meta)
    assert valid_metadata({**meta, "schema_version": 2}), "an older version nbgrader upgrades is valid"
    assert not valid_metadata({**meta, "schema_version": 99}), "a version newer than nbgrader knows is not"
    assert not valid_metadata({**meta, "points": "two"}) and not valid_metadata({**meta, "schema_version": True})


def test_collect_keeps_nbgrader_s_own_permission_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked collect step still refuses an inbound folder the instructor cannot read, as nbgrader's own does."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.abc.exchange import ExchangeError

    from ketamine_course.grading.adapters import exchange

    (tmp_path / "exchange" / "course" / "inbound").mkdir(parents=True)
    coursedir = CourseDirectory(course_id="course", assignment_id="quiz01", root=str(tmp_path))
    collect = exchange.SafeCollect(coursedir=coursedir, authenticator=Authenticator())
    collect.root = str(tmp_path / "exchange")
    collect.init_src()  # control: a readable inbound folder with nothing in it
    assert collect.src_records == []
    monkeypatch.setattr(exchange, "check_mode", lambda *args, **kwargs: False)  # as a folder without read permission
    with pytest.raises(ExchangeError, match="read permissions"):
        collect.init_src()


def test_the_doctor_names_the_versions_and_an_unsupported_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from ketamine_course.grading import adapters, doctor

    fine = doctor._nbgrader()
    assert fine.ok and "nbgrader 0.9" in fine.detail
    monkeypatch.setitem(adapters.SUPPORTED, "nbgrader", ">=0.10,<0.11")
    wrong = doctor._nbgrader()
    assert not wrong.ok and "the grader is written for nbgrader>=0.10,<0.11" in wrong.detail and "./course setup" in wrong.detail
