"""What the grader accepts from students: regular files in plain folders, of bounded size, under a plain id.

Students control their submission folders and the names in the exchange's
inbound folder. The grader runs with the instructor's rights, so following a
link the student made would let them read (or overwrite) anything the
instructor can. Every step that takes student files in checks them first
*without following links*:

* :class:`SafeCollect` (``nbgrader collect``) refuses a submission holding
  anything but regular files and folders, one over the size limits, or one
  whose student id is not a plain id, and says which and why;
* :func:`unsafe_submissions` does the same for every folder under
  ``submitted/`` when the grading configuration is loaded (see
  :mod:`ketamine_course.grading.config`), before nbgrader copies, reads or
  records anything, so a submission placed there by hand is checked too.

A refused submission is reported with its reason; the rest of the class is
graded.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["SubmissionRefused", "STUDENT_ID", "check_student_id", "check_tree", "SafeCollect", "Limits", "safe_copy_tree", "unsafe_submissions"]

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""A plain student id: letters, digits and ``. _ @ -``, at most 64 characters (a login name or an email address)."""


class SubmissionRefused(ValueError):
    """A submission the grader will not take in; the message says why in words."""


class Limits:
    """Size limits on what a student hands in (set from the BoundedExecute traits of the same names)."""

    max_notebook_bytes = 20 * 1024**2
    max_submission_bytes = 50 * 1024**2
    max_submission_files = 200


def check_student_id(student_id: str) -> str:
    """The id itself when it is plain; otherwise :class:`SubmissionRefused`."""
    if not STUDENT_ID.fullmatch(student_id):
        shown = student_id.encode("unicode_escape").decode("ascii")[:80]
        raise SubmissionRefused(
            f"student id {shown!r} is not a plain id (letters, digits, '.', '_', '@', '-'; at most 64 characters); "
            "rename the folder or ask the student to submit under their login name"
        )
    return student_id


def check_tree(folder: Path, *, max_notebook_bytes: int = Limits.max_notebook_bytes, max_total_bytes: int = Limits.max_submission_bytes, max_files: int = Limits.max_submission_files) -> int:
    """Check a submission folder without following links; return its size in bytes or raise :class:`SubmissionRefused`."""
    top = os.lstat(folder)
    if not stat.S_ISDIR(top.st_mode):
        raise SubmissionRefused(f"{folder.name} is {'a link' if stat.S_ISLNK(top.st_mode) else 'not a folder'}; only plain folders are accepted")
    total, count = 0, 0
    for directory, folders, files in os.walk(folder, followlinks=False):
        for name in folders + files:
            path = Path(directory) / name
            info = os.lstat(path)
            relative = path.relative_to(folder)
            if stat.S_ISLNK(info.st_mode):
                raise SubmissionRefused(f"{relative} is a symbolic link; submissions may hold only regular files and folders")
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise SubmissionRefused(f"{relative} is not a regular file or folder; submissions may hold only regular files and folders")
            if stat.S_ISREG(info.st_mode):
                if info.st_nlink > 1:
                    raise SubmissionRefused(f"{relative} is a hard link to another file; submissions may hold only their own files")
                count += 1
                total += info.st_size
                if name.endswith(".ipynb") and info.st_size > max_notebook_bytes:
                    raise SubmissionRefused(f"{relative} is {info.st_size / 1024**2:.1f} MB; notebooks above {max_notebook_bytes / 1024**2:g} MB are not graded (clear large outputs and submit again)")
        if count > max_files:
            raise SubmissionRefused(f"the submission holds more than {max_files} files")
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
            raise SubmissionRefused(f"the submission holds more than {max_files} files")
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


def unsafe_submissions(submitted: Path, limits: dict[str, int] | None = None) -> dict[str, str]:
    """Every student folder under ``submitted/`` that must not be graded, with the reason in words.

    A student is refused when their id is not plain, or when any of their
    submissions holds a link, a special file, or more than the size limits.
    Nothing is read but the folders' own entries (``lstat``).
    """
    refused: dict[str, str] = {}
    if not submitted.is_dir():
        return refused
    for student in sorted(os.listdir(submitted)):
        folder = submitted / student
        try:
            check_student_id(student)
            if os.path.islink(folder) or not folder.is_dir():
                raise SubmissionRefused(f"{student} is a symbolic link or not a folder; submissions must be plain folders")
            for quiz in sorted(os.listdir(folder)):
                check_tree(folder / quiz, **(limits or {}))
        except SubmissionRefused as reason:
            refused[student] = str(reason)
    return refused


def _collect_base() -> type:
    from nbgrader.exchange.default.collect import ExchangeCollect

    return ExchangeCollect


class SafeCollect(_collect_base()):  # type: ignore[misc]
    """nbgrader's collect, refusing links, special files, oversized submissions and unsafe ids (and saying why)."""

    refused: list[tuple[str, str]]
    src_records: list[dict[str, Any]]

    def init_src(self) -> None:
        self.refused = []
        super().init_src()
        kept = []
        for record in self.src_records:
            path = Path(self.inbound_path) / record["filename"]
            try:
                check_student_id(record["username"])
                check_tree(path, **_configured_limits(self.config))
            except SubmissionRefused as reason:
                self.refused.append((record["username"], str(reason)))
                self.log.error("Not collected: %r: %s", record["filename"][:100], reason)
                continue
            kept.append(record)
        self.src_records = kept

    def do_copy(self, src: str, dest: str, log: Any = None) -> None:
        """Copy without following links (the student can still change the inbound folder while it is copied)."""
        try:
            safe_copy_tree(Path(src), Path(dest), ignore=self.coursedir.ignore, **_configured_limits(self.config))
        except SubmissionRefused as reason:
            self.refused.append((Path(src).name.split("+")[0], str(reason)))
            self.log.error("Not collected: %r: %s", Path(src).name[:100], reason)
