"""What the grader accepts from students: regular files in plain folders, of bounded size, under a plain id.

Students control their submission folders and the names in the exchange's
inbound folder. The grader runs with the instructor's rights, so following a
link the student made would let them read (or overwrite) anything the
instructor can. Every step that takes student files in checks them first
*without following links*:

* ``SafeCollect`` (``nbgrader collect``, :mod:`.adapters.exchange`) refuses a submission holding
  anything but regular files and folders, one over the size limits, or one
  whose student id is not a plain id, and says which and why;
* :func:`check_tree` and :func:`check_student_id` check each submission
  under ``submitted/`` just before nbgrader would copy or read it (see
  :mod:`ketamine_course.grading.adapters.autograde`, which hooks them into
  nbgrader's Autograde converter), so a submission placed there by hand is checked too.

A refused submission is reported with its reason; the rest of the class is
graded. Lateness counts from a time the student cannot set (the last change
of their submission on disk, see :func:`newest_change`), and
``SafeReleaseFeedback`` (``nbgrader release_feedback``) releases every
student's feedback it can, naming those it cannot, instead of stopping.

This module is a pure core: it imports nothing of nbgrader.
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
    "printable", "SubmissionRefused", "STUDENT_ID", "check_student_id", "check_student_id_ok", "check_tree", "Limits",
    "safe_copy_tree", "newest_change", "SMALL_FILES", "TIMESTAMP_FORMAT", "configured_limits", "feedback_problem",
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


def check_tree(
    folder: Path, *, max_notebook_bytes: int = Limits.max_notebook_bytes,
    max_total_bytes: int = Limits.max_submission_bytes, max_files: int = Limits.max_submission_files,
) -> int:
    """Check a submission folder without following links; return its size in bytes or raise
    :class:`SubmissionRefused`.

    The walk is iterative and bounded (depth, entries): a folder nested a
    thousand deep is refused, it cannot exhaust the grader's stack.
    """
    top = os.lstat(folder)
    if not stat.S_ISDIR(top.st_mode):
        raise SubmissionRefused(
            f"{folder.name} is {'a link' if stat.S_ISLNK(top.st_mode) else 'not a folder'}; "
            "only plain folders are accepted"
        )
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
                    raise SubmissionRefused(
                        f"{relative} is a symbolic link; submissions may hold only regular files and folders"
                    )
                if stat.S_ISDIR(info.st_mode):
                    stack.append((Path(entry.path), depth + 1))
                    continue
                if not stat.S_ISREG(info.st_mode):
                    raise SubmissionRefused(
                        f"{relative} is not a regular file or folder; "
                        "submissions may hold only regular files and folders"
                    )
                if info.st_nlink > 1:
                    raise SubmissionRefused(
                        f"{relative} is a hard link to another file; submissions may hold only their own files"
                    )
                total += info.st_size
                if depth == 0 and entry.name in SMALL_FILES and info.st_size > SMALL_FILES[entry.name]:
                    raise SubmissionRefused(
                        f"{relative} is {info.st_size} bytes; nbgrader writes at most {SMALL_FILES[entry.name]} there "
                        "(ask the student to submit again with nbgrader submit)"
                    )
                if entry.name.endswith(".ipynb") and info.st_size > max_notebook_bytes:
                    raise SubmissionRefused(
                        f"{relative} is {info.st_size / 1024**2:.1f} MB; "
                        f"notebooks above {max_notebook_bytes / 1024**2:g} MB are not graded "
                        "(clear large outputs and submit again)"
                    )
                if total > max_total_bytes:
                    raise SubmissionRefused(f"the submission holds more than {max_total_bytes / 1024**2:g} MB")
    return total


def safe_copy_tree(
    src: Path, dest: Path, *, ignore: Iterable[str] = (), max_notebook_bytes: int = Limits.max_notebook_bytes,
    max_total_bytes: int = Limits.max_submission_bytes, max_files: int = Limits.max_submission_files,
) -> int:
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
                raise SubmissionRefused(
                    f"{where} is a symbolic link or cannot be read; submissions may hold only regular files and folders"
                ) from None
            try:
                info = os.fstat(fd)
                if stat.S_ISDIR(info.st_mode):
                    copy_dir(fd, target / entry, where)
                elif stat.S_ISREG(info.st_mode):
                    copy_file(fd, info, target / entry, where)
                else:
                    raise SubmissionRefused(
                        f"{where} is not a regular file or folder; submissions may hold only regular files and folders"
                    )
            finally:
                os.close(fd)

    def copy_file(fd: int, info: os.stat_result, target: Path, where: Path) -> None:
        if info.st_nlink > 1:
            raise SubmissionRefused(
                f"{where} is a hard link to another file; submissions may hold only their own files"
            )
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
                    raise SubmissionRefused(
                        f"{where} is larger than {limit / 1024**2:g} MB; "
                        f"notebooks above {max_notebook_bytes / 1024**2:g} MB are not graded "
                        "(clear large outputs and submit again)"
                    )
                if budget["bytes"] > max_total_bytes:
                    raise SubmissionRefused(f"the submission holds more than {max_total_bytes / 1024**2:g} MB")
                out.write(chunk)
        target.chmod(0o644)

    try:
        top = os.open(src, flags | os.O_DIRECTORY)
    except OSError:
        raise SubmissionRefused(
            f"{Path(src).name} is a symbolic link or not a folder; only plain folders are accepted"
        ) from None
    try:
        copy_dir(top, Path(dest), Path("."))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        os.close(top)
    return budget["bytes"]


def configured_limits(config: Any) -> dict[str, int]:
    """The submission-size limits a grading configuration sets (``c.BoundedExecute.max_*``), the defaults where it sets
    none."""
    section = config.get("BoundedExecute", {}) if config is not None else {}
    return {
        "max_notebook_bytes": int(section.get("max_notebook_bytes", Limits.max_notebook_bytes)),
        "max_total_bytes": int(section.get("max_submission_bytes", Limits.max_submission_bytes)),
        "max_files": int(section.get("max_submission_files", Limits.max_submission_files)),
    }


def feedback_problem(folder: Path) -> str | None:
    """Why nbgrader could not release a feedback folder (its secret and time missing, linked or oversized), or None."""
    for name, limit in SMALL_FILES.items():
        path = folder / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return (
                f"its submission has no {name} (not submitted with nbgrader submit); "
                "give the student the feedback page by hand"
            )
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit or info.st_size == 0:
            return f"its {name} is not one nbgrader wrote; give the student the feedback page by hand"
    return None
