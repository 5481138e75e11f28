"""JupyterHub for a class on one machine: real accounts, the course's environment, nbgrader per role.

Run as root (the hub starts each user's server as that user), from the course folder:

    KETAMINE_HUB_INSTRUCTORS=alice KETAMINE_HUB_STUDENTS=ada,ben,cy \\
        .venv/bin/jupyterhub -f hub/jupyterhub_config.py

* Log-in: PAM, the machine's own accounts and passwords (JupyterHub's default authenticator);
  only the listed instructors and students may log in.
* Servers: JupyterHub's default LocalProcessSpawner runs each user's server as that user, from
  this course folder's ``.venv`` (the environment ``./course setup`` made; every user can read it).
* Roles: students get nbgrader's Assignments tab (fetch, submit, fetch feedback) and Validate, and
  none of the instructor tools; instructors get the formgrader, course list and create-assignment
  too, with their own copy of the course (``~/ketamine-course``, see roles/instructor/). The
  configurations are in ``hub/roles/<role>/`` and reach each server through ``JUPYTER_CONFIG_PATH``.
* Exchange: ``KETAMINE_EXCHANGE`` (default nbgrader's ``/srv/nbgrader/exchange``, made once with
  ``install -d -m 1777``), given to every server.
* Proxy: configurable-http-proxy from npm, installed into ``hub/node_modules`` by ``./course hub-setup``.

Settings from the environment: ``KETAMINE_HUB_PORT`` (default 8000; the proxy's API listens on the
next port and the hub on the one after, all on 127.0.0.1 unless ``KETAMINE_HUB_IP`` says otherwise)
and ``KETAMINE_HUB_STATE`` (the hub's database, cookie secret and proxy pid file; default
``/var/lib/ketamine-hub``).
"""

import os
from pathlib import Path

from ketamine_course.grading.config import exchange_root

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

HUB = Path(__file__).resolve().parent
COURSE = HUB.parent
VENV_BIN = COURSE / ".venv" / "bin"


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


INSTRUCTORS = _names("KETAMINE_HUB_INSTRUCTORS")
STUDENTS = _names("KETAMINE_HUB_STUDENTS") - INSTRUCTORS
EXCHANGE = exchange_root()  # KETAMINE_EXCHANGE, else nbgrader's default (ketamine_course.grading.config)
STATE = Path(os.environ.get("KETAMINE_HUB_STATE", "/var/lib/ketamine-hub"))
IP = os.environ.get("KETAMINE_HUB_IP", "127.0.0.1")
PORT = int(os.environ.get("KETAMINE_HUB_PORT", "8000"))

STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
c.JupyterHub.bind_url = f"http://{IP}:{PORT}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 1}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{PORT + 2}"
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False  # no login session per server; the accounts' passwords are all PAM checks
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/tree"  # Notebook 7's file browser, with nbgrader's Assignments tab
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def role(name: str) -> str:
    """'instructor' or 'student' (only listed users can log in at all)."""
    return "instructor" if name in INSTRUCTORS else "student"


def _environment(spawner: object) -> None:
    """Each server: the course's environment first on PATH, its role's Jupyter configuration, the exchange."""
    name = spawner.user.name  # type: ignore[attr-defined]
    spawner.environment = {  # type: ignore[attr-defined]  # a new dict: never shared between two users' spawners
        **spawner.environment,  # type: ignore[attr-defined]
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": str(HUB / "roles" / role(name)),
        "KETAMINE_EXCHANGE": EXCHANGE,
    }


c.Spawner.pre_spawn_hook = _environment
