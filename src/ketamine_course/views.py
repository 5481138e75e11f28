"""The course's Jupyter views: which of nbgrader's tools each kind of user sees, in one place.

Each view is a folder of Jupyter configuration that reaches JupyterLab through
``JUPYTER_CONFIG_PATH``:

* ``learner`` (``jupyter/``): ``./course open`` and Binder (``postBuild`` reads
  its lists of plugins and server extensions from ``jupyter/``). Validate only:
  no instructor tools, no nbgrader menu and no Assignments tab (there is no
  exchange to fetch from or submit to);
* ``student`` (``hub/roles/student/``): a student on the course's JupyterHub.
  Validate, nbgrader's menu and the Assignments tab (fetch, submit, fetch
  feedback through the hub's exchange); no instructor tools;
* ``instructor`` (``hub/roles/instructor/``): an instructor on the hub, with
  every tool (formgrader, course list, create assignment).

Hidden plugins are disabled and locked (the plugin manager cannot switch them
back on). Every view has no news pop-up or update check, and saves widget state.

The JSON files in those folders are written from this module
(``python -m ketamine_course.views``, from the course folder) and never edited
by hand: ``tests/test_project.py`` fails when a file differs from what this
module says.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["INSTRUCTOR_PLUGINS", "INSTRUCTOR_SERVER_EXTENSIONS", "VIEWS", "View", "files", "main"]

LAB_PLUGIN_PREFIX = "@jupyter/nbgrader:"
SERVER_EXTENSION_PREFIX = "nbgrader.server_extensions."

INSTRUCTOR_PLUGINS = ("formgrader", "create-assignment", "course-list")
"""nbgrader's JupyterLab plugins only instructors use."""
INSTRUCTOR_SERVER_EXTENSIONS = ("formgrader", "course_list")
"""The server side of those tools."""
EXCHANGE_PLUGINS = ("assignment-list",)
"""The Assignments tab: fetch and submit through an instructor's exchange."""
EXCHANGE_SERVER_EXTENSIONS = ("assignment_list",)
MENU_PLUGIN = "menu"
"""nbgrader's menu, whose entries open the Assignments tab and the instructor tools."""
SERVER_EXTENSIONS = ("formgrader", "course_list", "assignment_list")
"""nbgrader's server extensions each view switches on or off (validate_assignment is always on)."""

LAB_SETTINGS: dict[str, Any] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
}
"""JupyterLab setting defaults in every view: no news or update pop-ups; a saved notebook keeps its widgets' state."""
LAB_APP: dict[str, Any] = {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}


@dataclass(frozen=True)
class View:
    """One kind of user: the folder of its configuration, nbgrader's lab plugins it hides, its server extensions
    switched off."""

    folder: str
    hidden_plugins: tuple[str, ...]
    off_server_extensions: tuple[str, ...]


VIEWS = {
    "learner": View(
        "jupyter", (*INSTRUCTOR_PLUGINS, MENU_PLUGIN, *EXCHANGE_PLUGINS),
        (*INSTRUCTOR_SERVER_EXTENSIONS, *EXCHANGE_SERVER_EXTENSIONS),
    ),
    "student": View("hub/roles/student", INSTRUCTOR_PLUGINS, INSTRUCTOR_SERVER_EXTENSIONS),
    "instructor": View("hub/roles/instructor", (), ()),
}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def files(view: View) -> dict[str, str]:
    """The configuration files of one view, by path inside its folder, as their text."""
    hidden = {f"{LAB_PLUGIN_PREFIX}{name}": True for name in view.hidden_plugins}
    server = {f"{SERVER_EXTENSION_PREFIX}{name}": name not in view.off_server_extensions for name in SERVER_EXTENSIONS}
    return {
        "jupyter_server_config.json": _json({"ServerApp": {"jpserver_extensions": server}, "LabApp": LAB_APP}),
        "labconfig/page_config.json": _json({"disabledExtensions": hidden, "lockedExtensions": hidden}),
        "labconfig/default_setting_overrides.json": _json(LAB_SETTINGS),
    }


def main(argv: list[str] | None = None) -> int:
    """Write every view's files under the course folder; with ``--check``, only say which differ."""
    parser = argparse.ArgumentParser(prog="python -m ketamine_course.views", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", type=Path, help="the course folder (default: here)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for view in VIEWS.values():
        for name, text in files(view).items():
            path = args.root / view.folder / name
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            stale.append(str(path))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
