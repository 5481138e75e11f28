"""Where users are: copies of the course as git would hand it over, and a PATH without a given tool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "tracked_files", "tracked_copy", "path_without"]


def tracked_files() -> list[str]:
    """Every file git would hand over (tracked, or new and not ignored), relative to the repository."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def tracked_copy(target: Path, exclude: tuple[str, ...] = ()) -> Path:
    """The repository's files as a clone would have them, copied to ``target`` (names starting with ``exclude`` left out)."""
    for name in tracked_files():
        if name.startswith(exclude):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    return target


def path_without(folder: Path, *tools: str) -> str:
    """A PATH like this one but without ``tools`` (a folder of links to every other program): a machine that lacks them."""
    folder.mkdir(parents=True, exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = folder / entry.name
            if entry.name in tools or link.exists() or link.is_symlink():
                continue
            if os.access(entry.path, os.X_OK) and not entry.is_dir():
                link.symlink_to(entry.path)
    return str(folder)
