"""Run each graded notebook's kernel in a sandbox, with limits.

nbgrader runs a student's code with the grader's own rights. Here every graded
kernel is launched through bubblewrap (``bwrap``) so that it:

* sees a minimal file system: the operating system (read-only), Python and the
  installed course package and its data (read-only), a private ``/tmp``, and,
  read-write, only its own submission's working folder. It cannot see
  ``source/``, the gradebook, other submissions or the instructor's home;
* has no network (a new, empty network namespace) and its own process,
  IPC and hostname namespaces; it dies with the grader;
* runs as an unprivileged uid of its own (``setpriv``) with resource limits
  (``prlimit``): CPU time, address space, processes, file size, open files;

and the execution itself (:class:`BoundedExecute`) bounds the total wall-clock
time per notebook and the output kept per notebook.

The kernel talks to the grader over Unix sockets in a private folder (IPC
transport), because TCP would need the network the sandbox does not have.

Where ``bwrap`` is missing, grading refuses to run untrusted code unless the
instructor opts out explicitly (``sandbox=False``; ``--unsandboxed``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbformat import NotebookNode, v4
from traitlets import Bool, Float, Integer, Unicode

__all__ = ["SandboxLimits", "SandboxUnavailable", "sandbox_missing", "sandbox_argv", "SandboxedKernelManager", "BoundedExecute"]

NOBODY_GID = 65534
FIRST_SANDBOX_UID = 200_000
"""Each kernel runs as its own unprivileged uid from here up (no account needed): the process
limit (RLIMIT_NPROC counts per uid) then applies to one kernel, and kernels cannot signal each other."""


def _sandbox_uid() -> int:
    import secrets

    return FIRST_SANDBOX_UID + secrets.randbelow(100_000)


class SandboxUnavailable(RuntimeError):
    """The tools to isolate student code are missing and the instructor has not opted out."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-kernel resource limits."""

    cpu_seconds: int = 120
    memory_bytes: int = 2 * 1024**3
    processes: int = 64
    file_size_bytes: int = 64 * 1024**2
    open_files: int = 256


def sandbox_missing() -> list[str]:
    """The isolation tools this machine lacks (empty when grading can be sandboxed)."""
    return [tool for tool in ("bwrap", "setpriv", "prlimit") if shutil.which(tool) is None]


def require_sandbox() -> None:
    missing = sandbox_missing()
    if missing:
        raise SandboxUnavailable(
            f"cannot isolate student code: {', '.join(missing)} not found. Install bubblewrap "
            "(Debian: apt-get install bubblewrap; setpriv and prlimit come with util-linux), "
            "or, only for code you trust, opt out explicitly (ketamine-grade --unsandboxed, "
            "or c.BoundedExecute.sandbox = False in nbgrader_config.py)."
        )


def _read_only_paths() -> list[str]:
    """What the kernel may read: Python, the virtual environment, the course package and its data."""
    from . import data

    package_dir = Path(__file__).resolve().parent
    paths = {sys.base_prefix, sys.prefix, str(package_dir.parent if package_dir.parent.name == "src" else package_dir)}
    paths.add(str(data.data_dir().resolve()))
    return sorted(p for p in paths if Path(p).exists())


def sandbox_argv(command: list[str], workdir: Path, private_dir: Path, limits: SandboxLimits, uid: int | None = None) -> list[str]:
    """Wrap a kernel command in bwrap + prlimit + setpriv (as ``uid``, an unprivileged uid of its own)."""
    uid = _sandbox_uid() if uid is None else uid
    # Every namespace but the user one: setpriv below needs real root to drop to an unprivileged uid.
    argv = ["bwrap", "--die-with-parent", "--new-session"]
    argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    for top in ("/usr", "/etc"):
        argv += ["--ro-bind", top, top]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        path = Path(top)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(top), top]
        elif path.is_dir():
            argv += ["--ro-bind", top, top]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/usr", "/etc", "/tmp", "/proc", "/dev"}

    def parents(path: str) -> list[str]:
        # bwrap creates missing parent folders as root-only; the kernel's uid must be able to pass through them
        out = []
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for path in _read_only_paths():
        argv += parents(path) + ["--ro-bind", path, path]
    for path in (str(private_dir), str(workdir)):
        argv += parents(path) + ["--bind", path, path]
    argv += ["--chdir", str(workdir)]
    environment = {
        "HOME": "/tmp",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": str(private_dir),
        "JUPYTER_CONFIG_DIR": "/tmp/jupyter",
        "JUPYTER_DATA_DIR": "/tmp/jupyter-data",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    data_override = os.environ.get("KETAMINE_COURSE_DATA")
    if data_override:
        argv += parents(data_override) + ["--ro-bind", data_override, data_override]
        environment["KETAMINE_COURSE_DATA"] = data_override
    argv.append("--clearenv")
    for name, value in environment.items():
        argv += ["--setenv", name, value]
    argv += [
        "--",
        shutil.which("prlimit") or "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size_bytes}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
        shutil.which("setpriv") or "setpriv",
        f"--reuid={uid}",
        f"--regid={NOBODY_GID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *command,
    ]
    return argv


class SandboxedKernelManager(AsyncKernelManager):
    """Launches the kernel inside the sandbox and talks to it over Unix sockets."""

    workdir = Unicode(help="the submission's working folder (the only writable place)").tag(config=True)
    cpu_seconds = Integer(SandboxLimits.cpu_seconds).tag(config=True)
    memory_bytes = Integer(SandboxLimits.memory_bytes).tag(config=True)
    processes = Integer(SandboxLimits.processes).tag(config=True)
    file_size_bytes = Integer(SandboxLimits.file_size_bytes).tag(config=True)
    open_files = Integer(SandboxLimits.open_files).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._private = Path(tempfile.mkdtemp(prefix="ketamine-kernel-"))
        self._private.chmod(0o777)  # the kernel, under its own uid, creates its sockets here
        self.transport = "ipc"
        self.ip = str(self._private / "kernel")
        self.connection_file = str(self._private / "connection.json")
        if self.kernel_spec is not None:
            # signals would reach bwrap, not the kernel: interrupt through the control channel
            self.kernel_spec.interrupt_mode = "message"

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        Path(self.connection_file).chmod(0o644)  # readable by the kernel; the folder is private to this grading

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kwargs: Any) -> None:
        import subprocess

        # the kernel's own start-up chatter is not the grader's business
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        await super()._async_launch_kernel(kernel_cmd, **kwargs)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        workdir = Path(self.workdir or os.getcwd()).resolve()
        workdir.chmod(workdir.stat().st_mode | 0o777)
        limits = SandboxLimits(self.cpu_seconds, self.memory_bytes, self.processes, self.file_size_bytes, self.open_files)
        return sandbox_argv(command, workdir, self._private, limits)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._private, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources


def _execute_base():
    from nbgrader.preprocessors import Execute

    return Execute


class BoundedExecute(_execute_base()):  # type: ignore[misc]
    """nbgrader's Execute, sandboxed, with a time limit for the whole notebook and a cap on output.

    A cell that would start after the notebook's time is up is not run; it gets
    an error output saying so (no credit). If the kernel dies (``os._exit``,
    ``exit()``, a resource limit), the remaining cells are marked the same way
    instead of aborting the grading of the submission.
    """

    sandbox = Bool(True, help="run the kernel in the sandbox; False only for code you trust").tag(config=True)
    notebook_timeout = Float(180.0, help="seconds of wall-clock time for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output kept per notebook; the rest is dropped").tag(config=True)
    cpu_seconds = Integer(SandboxLimits.cpu_seconds).tag(config=True)
    memory_bytes = Integer(SandboxLimits.memory_bytes).tag(config=True)
    processes = Integer(SandboxLimits.processes).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._deadline = time.monotonic() + self.notebook_timeout
        self._output_bytes = 0
        self._truncated = False
        self._stopped: str | None = None
        self._cell_timeout = self.timeout
        if self.sandbox:
            require_sandbox()
            workdir = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
            km = SandboxedKernelManager(
                kernel_name=self.kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3"),
                workdir=str(workdir),
                cpu_seconds=self.cpu_seconds,
                memory_bytes=self.memory_bytes,
                processes=self.processes,
            )
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            self.timeout = self._cell_timeout

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if self._stopped is None and remaining <= 0:
            self._stopped = f"the notebook's time limit ({self.notebook_timeout:g} s) was reached"
        if self._stopped:
            cell.outputs = [_not_run(self._stopped)]
            return cell, resources
        self.timeout = max(1, int(min(self._cell_timeout, remaining)))
        try:
            return super().preprocess_cell(cell, resources, index)
        except Exception as error:  # the kernel died or stopped answering
            if type(error).__name__ not in ("DeadKernelError", "UnresponsiveKernelError", "RuntimeError", "CellTimeoutError", "TimeoutError"):
                raise
            self._stopped = f"the kernel stopped ({type(error).__name__})"
            cell.outputs = list(cell.get("outputs", [])) + [_not_run(self._stopped)]
            return cell, resources

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._output_bytes += size
        if self._output_bytes > self.max_output_bytes and msg.get("msg_type") != "error":
            if not self._truncated:
                self._truncated = True
                outs.append(v4.new_output("stream", name="stdout", text=f"\n[output beyond {self.max_output_bytes} bytes dropped by the grader]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


def _not_run(reason: str) -> NotebookNode:
    text = f"Not run: {reason}."
    return v4.new_output("error", ename="NotRun", evalue=text, traceback=[text])
