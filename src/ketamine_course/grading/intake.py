"""What the grader accepts from students: regular files in plain folders, of bounded size, under a plain id.

Students control their submission folders and the names in the exchange's
inbound folder. The grader runs with the instructor's rights, so following a
link the student made would let them read (or overwrite) anything the
instructor can. Every step that takes student files in checks them first
*without following links*:

* :class:`SafeCollect` (``nbgrader collect``) refuses a submission holding
  anything but regular files and folders, one over the size limits, or one
  whose student id is not a plain id, and says which and why;
* :func:`check_tree` and :func:`check_student_id` check each submission
  under ``submitted/`` just before nbgrader would copy or read it (see
  :mod:`ketamine_course.grading.review`, which hooks them into nbgrader's
  Autograde converter), so a submission placed there by hand is checked too.

A refused submission is reported with its reason; the rest of the class is
graded. Lateness counts from a time the student cannot set (the last change
of their submission on disk, see :func:`newest_change`), and
:class:`SafeReleaseFeedback` (``nbgrader release_feedback``) releases every
student's feedback it can, naming those it cannot, instead of stopping.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "printable", "SubmissionRefused", "STUDENT_ID", "check_student_id", "check_student_id_ok", "check_tree", "SafeCollect", "Limits",
    "safe_copy_tree", "newest_change", "SafeReleaseFeedback", "SMALL_FILES",
]

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""A plain student id: letters, digits and ``. _ @ -``, at most 64 characters (a login name or an email address)."""


class SubmissionRefused(ValueError):
    """A submission the grader will not take in; the message says why in words."""


class Limits:
    """Size limits on what a student hands in (set from the BoundedExecute traits of the same names)."""

    max_notebook_bytes = 20 * 1024**2
    max_submission_bytes = 50 * 1024**2
    max_submission_files = 200
    max_cells = 1000


def printable(text: object, limit: int = 200) -> str:
    """Text from a submission made safe to print in a terminal or a log (control characters escaped)."""
    shown = str(text)[:limit]
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in shown)


def check_student_id(student_id: str) -> str:
    """The id itself when it is plain; otherwise :class:`SubmissionRefused`."""
    if not STUDENT_ID.fullmatch(student_id):
        shown = student_id.encode("unicode_escape").decode("ascii")[:80]
        raise SubmissionRefused(
            f"student id {shown!r} is not a plain id (letters, digits, '.', '_', '@', '-'; at most 64 characters); "
            "rename the folder or ask the student to submit under their login name"
        )
    return student_id


MAX_DEPTH = 16
"""Folders nested deeper than this in a submission are refused (a quiz needs none)."""


def check_student_id_ok(student_id: str) -> bool:
    """Whether a student id is plain (see :data:`ketamine_course.grading.intake.STUDENT_ID`)."""
    try:
        check_student_id(student_id)
    except SubmissionRefused:
        return False
    return True


SMALL_FILES = {"timestamp.txt": 64, "submission_secret.txt": 256}
"""Files nbgrader itself writes into a submission, and the most bytes each may hold (nbgrader parses them: a 3 MB
timestamp costs minutes of parsing; a larger one is refused before anything reads it)."""

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
"""How nbgrader writes a submission's time (its ``Exchange.timestamp_format`` with the UTC zone)."""


def newest_change(folder: Path, max_entries: int = Limits.max_submission_files + 1) -> datetime.datetime:
    """The latest status change (``ctime``, which no user can set back) of a folder or anything in it, as naive UTC.

    A student can rename a submission, write any time into its name or its
    ``timestamp.txt``, and set any file's modification time; each of these
    moves the status-change time of what it touched to *now*.
    """
    newest = os.lstat(folder).st_ctime
    stack, seen = [folder], 0
    while stack and seen <= max_entries:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                seen += 1
                info = entry.stat(follow_symlinks=False)
                newest = max(newest, info.st_ctime)
                if stat.S_ISDIR(info.st_mode):
                    stack.append(Path(entry.path))
    return datetime.datetime.fromtimestamp(newest, datetime.UTC).replace(tzinfo=None)


def check_tree(folder: Path, *, max_notebook_bytes: int = Limits.max_notebook_bytes, max_total_bytes: int = Limits.max_submission_bytes, max_files: int = Limits.max_submission_files) -> int:
    """Check a submission folder without following links; return its size in bytes or raise :class:`SubmissionRefused`.

    The walk is iterative and bounded (depth, entries): a folder nested a
    thousand deep is refused, it cannot exhaust the grader's stack.
    """
    top = os.lstat(folder)
    if not stat.S_ISDIR(top.st_mode):
        raise SubmissionRefused(f"{folder.name} is {'a link' if stat.S_ISLNK(top.st_mode) else 'not a folder'}; only plain folders are accepted")
    total, count = 0, 0
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack:
        directory, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SubmissionRefused(f"folders are nested more than {MAX_DEPTH} deep")
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                relative = Path(entry.path).relative_to(folder)
                count += 1  # folders count too
                if count > max_files:
                    raise SubmissionRefused(f"the submission holds more than {max_files} files and folders")
                if stat.S_ISLNK(info.st_mode):
                    raise SubmissionRefused(f"{relative} is a symbolic link; submissions may hold only regular files and folders")
                if stat.S_ISDIR(info.st_mode):
                    stack.append((Path(entry.path), depth + 1))
                    continue
                if not stat.S_ISREG(info.st_mode):
                    raise SubmissionRefused(f"{relative} is not a regular file or folder; submissions may hold only regular files and folders")
                if info.st_nlink > 1:
                    raise SubmissionRefused(f"{relative} is a hard link to another file; submissions may hold only their own files")
                total += info.st_size
                if depth == 0 and entry.name in SMALL_FILES and info.st_size > SMALL_FILES[entry.name]:
                    raise SubmissionRefused(f"{relative} is {info.st_size} bytes; nbgrader writes at most {SMALL_FILES[entry.name]} there (ask the student to submit again with nbgrader submit)")
                if entry.name.endswith(".ipynb") and info.st_size > max_notebook_bytes:
                    raise SubmissionRefused(f"{relative} is {info.st_size / 1024**2:.1f} MB; notebooks above {max_notebook_bytes / 1024**2:g} MB are not graded (clear large outputs and submit again)")
                if total > max_total_bytes:
                    raise SubmissionRefused(f"the submission holds more than {max_total_bytes / 1024**2:g} MB")
    return total


def safe_copy_tree(src: Path, dest: Path, *, ignore: Iterable[str] = (), max_notebook_bytes: int = Limits.max_notebook_bytes, max_total_bytes: int = Limits.max_submission_bytes, max_files: int = Limits.max_submission_files) -> int:
    """Copy a folder the student may still be changing, never following a link: return the bytes copied.

    Every folder and file is opened relative to its parent's descriptor with
    ``O_NOFOLLOW`` and checked on the open descriptor, so a file swapped for a
    link or a pipe between a check and the copy is refused, not followed.
    Names matching ``ignore`` (nbgrader's ``CourseDirectory.ignore``) are
    skipped. On refusal the partial copy is removed and
    :class:`SubmissionRefused` says why.
    """
    import fnmatch
    import shutil

    patterns = list(ignore)
    budget = {"bytes": 0, "files": 0}
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

    def copy_dir(dir_fd: int, target: Path, relative: Path) -> None:
        if len(relative.parts) > MAX_DEPTH:
            raise SubmissionRefused(f"folders are nested more than {MAX_DEPTH} deep")
        budget["files"] += 1
        if budget["files"] > max_files:
            raise SubmissionRefused(f"the submission holds more than {max_files} files and folders")
        target.mkdir(mode=0o755)
        for entry in sorted(os.listdir(dir_fd)):
            if any(fnmatch.fnmatch(entry, pattern) for pattern in patterns):
                continue
            where = relative / entry
            try:
                fd = os.open(entry, flags | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                raise SubmissionRefused(f"{where} is a symbolic link or cannot be read; submissions may hold only regular files and folders") from None
            try:
                info = os.fstat(fd)
                if stat.S_ISDIR(info.st_mode):
                    copy_dir(fd, target / entry, where)
                elif stat.S_ISREG(info.st_mode):
                    copy_file(fd, info, target / entry, where)
                else:
                    raise SubmissionRefused(f"{where} is not a regular file or folder; submissions may hold only regular files and folders")
            finally:
                os.close(fd)

    def copy_file(fd: int, info: os.stat_result, target: Path, where: Path) -> None:
        if info.st_nlink > 1:
            raise SubmissionRefused(f"{where} is a hard link to another file; submissions may hold only their own files")
        budget["files"] += 1
        if budget["files"] > max_files:
            raise SubmissionRefused(f"the submission holds more than {max_files} files and folders")
        limit = max_notebook_bytes if where.suffix == ".ipynb" else max_total_bytes
        with open(target, "xb") as out:
            size = 0
            while chunk := os.read(fd, 1 << 20):
                size += len(chunk)
                budget["bytes"] += len(chunk)
                if size > limit:
                    raise SubmissionRefused(f"{where} is larger than {limit / 1024**2:g} MB; notebooks above {max_notebook_bytes / 1024**2:g} MB are not graded (clear large outputs and submit again)")
                if budget["bytes"] > max_total_bytes:
                    raise SubmissionRefused(f"the submission holds more than {max_total_bytes / 1024**2:g} MB")
                out.write(chunk)
        target.chmod(0o644)

    try:
        top = os.open(src, flags | os.O_DIRECTORY)
    except OSError:
        raise SubmissionRefused(f"{Path(src).name} is a symbolic link or not a folder; only plain folders are accepted") from None
    try:
        copy_dir(top, Path(dest), Path("."))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        os.close(top)
    return budget["bytes"]


def _configured_limits(config: Any) -> dict[str, int]:
    section = config.get("BoundedExecute", {}) if config is not None else {}
    return {
        "max_notebook_bytes": int(section.get("max_notebook_bytes", Limits.max_notebook_bytes)),
        "max_total_bytes": int(section.get("max_submission_bytes", Limits.max_submission_bytes)),
        "max_files": int(section.get("max_submission_files", Limits.max_submission_files)),
    }


def _collect_base() -> type:
    from nbgrader.exchange.default.collect import ExchangeCollect

    return ExchangeCollect


class SafeCollect(_collect_base()):  # type: ignore[misc]
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

        from nbgrader.api import Gradebook, MissingEntry

        self.refused = []
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(self.inbound_path, f"{glob.escape(student_id) if student_id != '*' else '*'}+{glob.escape(self.coursedir.assignment_id)}+*")
        records = []
        for path in glob.glob(pattern):
            name = os.path.basename(path)
            try:
                record = self._path_to_record(path)
            except Exception:  # nbgrader's own parser fails on a name it cannot read, for the whole class
                self._refuse(name.split("+")[0], name, "the name in the exchange is not student+quiz+time; it was not made by nbgrader submit")
                continue
            try:
                check_student_id(record["username"])
                if self.check_owner:
                    owner = pwd.getpwuid(os.lstat(path).st_uid).pw_name
                    if owner != record["username"]:
                        raise SubmissionRefused(f"it claims to be from {record['username']} but belongs to {owner}")
                check_tree(Path(path), **_configured_limits(self.config))
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
            safe_copy_tree(Path(src), Path(dest), ignore=self.coursedir.ignore, **_configured_limits(self.config))
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


def _release_feedback_base() -> type:
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback

    return ExchangeReleaseFeedback


class SafeReleaseFeedback(_release_feedback_base()):  # type: ignore[misc]
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
            reason = _feedback_problem(folder)
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


def _feedback_problem(folder: Path) -> str | None:
    """Why nbgrader could not release a feedback folder (its secret and time missing, linked or oversized), or None."""
    for name, limit in SMALL_FILES.items():
        path = folder / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return f"its submission has no {name} (not submitted with nbgrader submit); give the student the feedback page by hand"
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit or info.st_size == 0:
            return f"its {name} is not one nbgrader wrote; give the student the feedback page by hand"
    return None
