"""The learner's own copy of the course: ``work/``, seeded from ``notebooks/`` and ``release/``, never overwritten.

``./course open`` serves ``work/`` (git-ignored) as JupyterLab's root, so
running a lesson, saving it or answering a quiz changes only the learner's
copy; the repository's tracked files stay as the course ships them, and a
``git pull`` of a course update never meets the learner's work.

On every open, :func:`seed` brings the workspace up to date with the course
without losing anything:

* a lesson or quiz missing from ``work/`` is copied in (a new unit, or one the
  learner deleted to get a fresh copy);
* a copy whose text the learner never changed (its cells' sources are still
  those the course last put there, recorded in ``work/.course-seed.json``;
  outputs and metadata from running or saving it do not count as changes)
  follows a course update;
* a copy whose text the learner changed (an answer, a note, an edited cell) is
  kept as it is, and the course's newer version is reported, never written
  over it.

The layout inside ``work/`` mirrors the repository (``notebooks/`` beside
``release/``), so the course map's links (``../release/<quiz>/<quiz>.ipynb``)
resolve inside the served folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["COURSE_FOLDERS", "MANIFEST", "SeedReport", "course_files", "main", "seed", "text_fingerprint"]

COURSE_FOLDERS = ("notebooks", "release")
"""What a learner works in: the lessons and the student versions of the quizzes."""

MANIFEST = ".course-seed.json"
"""In the workspace: the text fingerprint (:func:`text_fingerprint`) of each notebook as the course last copied it."""


@dataclass
class SeedReport:
    """What :func:`seed` did, each path relative to the workspace."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # the learner's edited copy; the course has a newer version

    def lines(self) -> list[str]:
        """Messages for the learner, one per file that was copied, updated or kept over a newer course version."""
        out = []
        if self.copied:
            out.append(f"course: copied {len(self.copied)} notebook(s) into your work folder: {', '.join(self.copied)}")
        out += [
            f"course: updated {path} to the course's new version (you had not edited it; run it again for its outputs)"
            for path in self.updated
        ]
        out += [
            f"course: the course has a newer {path}; your copy is kept. "
            "To get the new one, rename yours and open the course again."
            for path in self.kept
        ]
        return out


def text_fingerprint(path: Path) -> str:
    """SHA-256 of a notebook's text: each cell's type and source, in order (not outputs or metadata).

    A file that is not a readable notebook fingerprints its raw bytes, so it is
    never mistaken for an unedited copy.
    """
    raw = path.read_bytes()
    try:
        cells = json.loads(raw)["cells"]
        text = json.dumps([[c["cell_type"], "".join(c["source"])] for c in cells], ensure_ascii=False)
    except (ValueError, KeyError, TypeError):
        return "raw:" + hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def course_files(course_root: Path) -> list[str]:
    """The notebooks a learner works in, relative to ``course_root`` (POSIX paths, sorted)."""
    files = []
    for folder in COURSE_FOLDERS:
        for path in (course_root / folder).rglob("*.ipynb"):
            if ".ipynb_checkpoints" not in path.parts:
                files.append(path.relative_to(course_root).as_posix())
    return sorted(files)


def _read_manifest(workspace: Path) -> dict[str, str]:
    try:
        manifest = json.loads((workspace / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in manifest.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(manifest, dict) else {}
    )


def seed(course_root: Path, workspace: Path) -> SeedReport:
    """Bring ``workspace`` up to date with the course at ``course_root`` without overwriting the learner's changes.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "notebooks").mkdir(), (root / "notebooks" / "a.ipynb").write_text("v1")
    >>> seed(root, root / "work").copied
    ['notebooks/a.ipynb']
    >>> _ = (root / "work" / "notebooks" / "a.ipynb").write_text("mine")
    >>> _ = (root / "notebooks" / "a.ipynb").write_text("v2")
    >>> seed(root, root / "work").kept, (root / "work" / "notebooks" / "a.ipynb").read_text()
    (['notebooks/a.ipynb'], 'mine')
    >>> _ = (root / "work" / "notebooks" / "b.ipynb").write_text("x")  # (not a course file)
    >>> _ = (root / "notebooks" / "a.ipynb").write_text("v1")  # the course back at the version the copy came from
    >>> seed(root, root / "work").kept
    []
    """
    report = SeedReport()
    manifest = _read_manifest(workspace)
    for relative in course_files(course_root):
        source, target = course_root / relative, workspace / relative
        shipped = text_fingerprint(source)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            report.copied.append(relative)
        elif text_fingerprint(target) == shipped or manifest.get(relative) == shipped:
            pass  # the same text, or the learner's own edits of the version the course still ships
        elif manifest.get(relative) == text_fingerprint(target):
            shutil.copyfile(source, target)
            report.updated.append(relative)
        else:
            report.kept.append(relative)
            if relative in manifest:
                continue  # the manifest keeps the hash the learner's copy started from: said again until taken
            # a copy from before the manifest: said once, then only when the course changes again
        manifest[relative] = shipped
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m ketamine_course.workspace COURSE_ROOT WORKSPACE``: seed the workspace and say what changed."""
    parser = argparse.ArgumentParser(
        description="Copy the course's lessons and quizzes into your work folder, keeping your changes."
    )
    parser.add_argument("course_root", type=Path)
    parser.add_argument("workspace", type=Path)
    args = parser.parse_args(argv)
    if not (args.course_root / "notebooks").is_dir():
        print(f"course: no notebooks/ folder in {args.course_root}: run this from the course folder", file=sys.stderr)
        return 2
    for line in seed(args.course_root, args.workspace).lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
