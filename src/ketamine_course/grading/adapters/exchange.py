"""nbgrader's exchange, collecting and releasing safely: what a student placed in the exchange is hostile.

:class:`SafeCollect` is nbgrader's ``ExchangeCollect`` with ``init_src``
forked from nbgrader 0.9.6's (keeping its course, folder and permission
checks; nbgrader's own parses every name in the inbound folder and stops for
the whole class on one it cannot read; it trusts the time a student claims)
and ``do_copy`` replaced; it uses nbgrader's private ``_path_to_record`` and
``_sort_by_timestamp``. :class:`SafeReleaseFeedback` wraps
``ExchangeReleaseFeedback.copy_files``. ``nbgrader_config.py`` names both
(``ExchangeFactory``), through :func:`~ketamine_course.grading.config.apply_pipeline`.

The checks themselves (ids, trees, sizes, times) are the pure
:mod:`ketamine_course.grading.intake`.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
from nbgrader.utils import check_mode

from ..intake import (
    TIMESTAMP_FORMAT,
    SubmissionRefused,
    check_student_id,
    check_tree,
    configured_limits,
    feedback_problem,
    newest_change,
    printable,
    safe_copy_tree,
)

__all__ = ["SafeCollect", "SafeReleaseFeedback"]


class SafeCollect(ExchangeCollect):
    """nbgrader's collect, refusing what a student could use against the grader or another student (and saying why).

    Refused: a name in the inbound folder that is not ``student+quiz+time+...``
    (nbgrader would stop collecting for everyone), a submission owned by
    someone other than the student it claims to be (when nbgrader's
    ``check_owner`` is on, as by default: nbgrader only warns), links, special
    files, oversized or too deep submissions, and unplain student ids.
    """

    refused: list[tuple[str, str]]
    src_records: list[dict[str, Any]]

    def _refuse(self, who: str, name: str, reason: str) -> None:
        self.refused.append((who, reason))
        self.log.error("Not collected: %s: %s", name.encode("unicode_escape").decode("ascii")[:120], reason)

    def init_src(self) -> None:
        import glob
        import pwd

        self.refused = []
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        if not check_mode(self.inbound_path, read=True, execute=True):  # as nbgrader's own init_src
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path}")
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(
            self.inbound_path,
            f"{glob.escape(student_id) if student_id != '*' else '*'}+{glob.escape(self.coursedir.assignment_id)}+*",
        )
        records = []
        for path in glob.glob(pattern):
            name = os.path.basename(path)
            try:
                record = self._path_to_record(path)
            except Exception:  # nbgrader's own parser fails on a name it cannot read, for the whole class
                self._refuse(
                    name.split("+")[0], name,
                    "the name in the exchange is not student+quiz+time; it was not made by nbgrader submit",
                )
                continue
            try:
                check_student_id(record["username"])
                if self.check_owner:
                    owner = pwd.getpwuid(os.lstat(path).st_uid).pw_name
                    if owner != record["username"]:
                        raise SubmissionRefused(f"it claims to be from {record['username']} but belongs to {owner}")
                check_tree(Path(path), **configured_limits(self.config))
            except KeyError:
                self._refuse(record["username"], name, "it belongs to a user this machine does not know")
                continue
            except SubmissionRefused as reason:
                self._refuse(record["username"], name, str(reason))
                continue
            except Exception as error:  # anything else about it: refuse it, saying so
                self._refuse(record["username"], name, f"it could not be checked ({type(error).__name__})")
                continue
            records.append(record)
        by_student: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_student.setdefault(record["username"], []).append(record)
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for submissions in by_student.values():
            for record in submissions:  # the time it was submitted: never earlier than its last change on disk
                changed = newest_change(Path(self.inbound_path) / record["filename"])
                record["claimed"] = record["timestamp"]
                record["timestamp"] = max(record["timestamp"], changed)
            ordered = self._sort_by_timestamp(submissions)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in ordered if r["timestamp"] <= self.duedate]
                self.src_records.append(on_time[0] if on_time else ordered[0])
            else:
                self.src_records.append(ordered[0])

    def do_copy(self, src: str, dest: str, log: Any = None) -> None:
        """Copy without following links (the student can still change the inbound folder while it is copied).

        The copy's ``timestamp.txt`` (what nbgrader reads for lateness) is the
        time the grader trusts: the later of the time claimed and the last
        change of the submission on disk, after the copy.
        """
        try:
            safe_copy_tree(Path(src), Path(dest), ignore=self.coursedir.ignore, **configured_limits(self.config))
        except SubmissionRefused as reason:
            self.refused.append((Path(src).name.split("+")[0], str(reason)))
            self.log.error("Not collected: %r: %s", Path(src).name[:100], reason)
            return
        record = next((r for r in self.src_records if r["filename"] == Path(src).name), None)
        trusted = max(newest_change(Path(src)), record["timestamp"] if record else datetime.datetime.min)
        if record is not None and trusted > record.get("claimed", trusted) + datetime.timedelta(seconds=2):
            self.log.warning("Submission %s: claimed %s, last changed %s; lateness counts from %s",
                             printable(Path(src).name, 100), record["claimed"], trusted, trusted)
        stamp = Path(dest) / "timestamp.txt"
        stamp.unlink(missing_ok=True)
        stamp.write_text(trusted.strftime(TIMESTAMP_FORMAT))


class SafeReleaseFeedback(ExchangeReleaseFeedback):
    """nbgrader's release_feedback, releasing everyone's feedback it can and naming (not failing on) the rest.

    nbgrader stops for the whole class at the first feedback folder without a
    readable ``submission_secret.txt`` or ``timestamp.txt`` (a submission
    placed by hand, or a damaged one); here such a student is named, with the
    reason, and left out; the rest get their feedback.
    """

    def copy_files(self) -> None:
        import glob

        unreleasable = []
        for page in glob.glob(os.path.join(self.src_path, "*.html")):
            folder = Path(page).parent
            student_id = folder.parent.name if folder.name == self.coursedir.assignment_id else folder.name
            reason = feedback_problem(folder)
            if reason:
                unreleasable.append(student_id)
                self.log.error("Feedback not released: %s: %s", printable(student_id, 80), reason)
        previous = self.coursedir.student_id_exclude
        if unreleasable:
            self.coursedir.student_id_exclude = ",".join(filter(None, [previous, *sorted(set(unreleasable))]))
        try:
            super().copy_files()
        finally:
            self.coursedir.student_id_exclude = previous
