"""Each graded kernel in a cage of its own: bubblewrap, limits for the whole kernel, and nothing left behind.

nbgrader runs a student's code with the grader's own rights. Here every graded
kernel is launched through bubblewrap (``bwrap``) and sees:

* the operating system, Python, the course's environment and package and its
  data, read-only (the environment's and the machine's Jupyter configuration
  folders hidden); a working folder that holds **copies of the student's own
  files only** (never a notebook, so never a hidden test); its own ``/tmp``;
  nothing else of the grader's machine (not ``source/``, the gradebook, other
  submissions, the instructor's home);
* no network, and its own process, IPC and hostname namespaces; it dies with
  the grader;
* another uid than the grader's: as root, an unprivileged uid of its own
  (``setpriv``); as any other user, a uid inside a user namespace
  (``bwrap --unshare-user``), so sandboxed grading needs no root.

Limits hold for the **whole kernel**, all its processes together:

* processes: ``RLIMIT_NPROC`` counted inside the kernel's own uid, plus a pids
  limit in the kernel's cgroup where the host gives the grader one
  (:mod:`.cgroups`: cgroup v2, a systemd user scope, or cgroup v1);
* memory: the memory limit of the kernel's cgroup, where there is one;
  elsewhere a watchdog sums the resident memory of every process of the
  kernel ten times a second and stops the kernel above the limit (each
  process is also held by ``RLIMIT_AS``);
* disk: the working folder lives on disk in the kernel's private folder; the
  watchdog stops the kernel when it, with any file the kernel keeps open but
  no folder shows (memfd, deleted files), exceeds the limit (each file is also
  held by ``RLIMIT_FSIZE``); ``/tmp`` and ``/dev/shm`` are tmpfs of a fixed
  size;
* CPU time and open files per process (``prlimit``).

When its notebook is done (or a limit is hit) every process of the kernel is
killed, its cgroups and its private folder are removed. The kernel talks to
the grader over Unix sockets in that private folder; the last lines it writes
to its error output are kept (in memory, bounded), so a kernel that cannot
start says why.

The course, its environment and the temporary folder may live anywhere,
``/tmp`` included: the kernel's own ``/tmp`` is mounted first and everything
the kernel must see is bound over it.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .cgroups import KernelCgroup, current_plan, kernel_cgroup

__all__ = [
    "SandboxLimits", "SandboxUnavailable", "sandbox_missing", "require_sandbox", "in_kubernetes", "KernelCage",
    "KernelStartFailed", "ErrorTail", "sandbox_argv", "why_unsandboxed",
]

NOBODY_GID = 65534
FIRST_SANDBOX_UID = 200_000
"""As root, each kernel runs as its own unprivileged uid from here up (no account needed)."""
SANDBOX_UID_IN_NAMESPACE = 1000
"""As any other user, the uid the kernel has inside its user namespace."""
PACKAGE_MOUNT = "/opt/ketamine-course"
SHM_BYTES = 64 * 1024**2
"""Size of the kernel's /dev/shm (shared memory for multiprocessing)."""
"""Where the kernel sees the course package and its data (not at the course's own path)."""


SANDBOX_UIDS = 100_000
"""How many uids (from :data:`FIRST_SANDBOX_UID`) the kernels of one machine draw from, as root."""
WORKER_SLOT_ENV = "KETAMINE_GRADE_WORKER"
"""Set to ``slot/workers`` in each worker of a parallel grading run, so that its kernels' uids are its own."""


def sandbox_uid_offset() -> int:
    """A random uid offset for a new kernel; in a parallel run, one no other worker of the run can draw.

    Worker ``w`` of ``n`` draws only offsets ``w, w + n, w + 2n, ...``: two
    kernels that run at the same time never share a uid (and so cannot signal
    or read each other), by construction rather than by chance.
    """
    slot, workers = 0, 1
    text = os.environ.get(WORKER_SLOT_ENV, "")
    if text:
        slot_text, _, workers_text = text.partition("/")
        slot, workers = int(slot_text), int(workers_text)
        if not 0 <= slot < workers:
            raise ValueError(f"{WORKER_SLOT_ENV}={text!r}: the slot must be below the number of workers")
    draw = int.from_bytes(os.urandom(4), "big") % (SANDBOX_UIDS // workers)
    return slot + workers * draw


UNIX_SOCKET_PATH_MAX = 107
"""Longest path a Unix socket may have on Linux (``sun_path`` holds 108 bytes with the final NUL)."""
_SOCKET_SUFFIX = "/ketamine-kernel-xxxxxxxx/run/kernel-99"
"""The tail the kernel's sockets add to the folder their private folder is made in (jupyter_client numbers them from
1)."""


def private_folder_base() -> str:
    """Where kernels' private folders are made: the temporary folder, or ``/tmp`` when its path is too long for sockets.

    The kernel talks to the grader over Unix sockets in its private folder; a
    deep ``TMPDIR`` (a test's or a job scheduler's) would make their paths
    longer than Linux allows, and every kernel would fail to start.
    """
    base = tempfile.gettempdir()
    if len(os.fsencode(base + _SOCKET_SUFFIX)) <= UNIX_SOCKET_PATH_MAX:
        return base
    if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK):
        return "/tmp"
    raise SandboxUnavailable(
        f"the temporary folder {base!r} is too deep for the kernel's sockets (at most {UNIX_SOCKET_PATH_MAX} bytes) "
        "and /tmp is not writable; set TMPDIR to a shorter folder"
    )


class SandboxUnavailable(RuntimeError):
    """Student code cannot be isolated here and the instructor has not opted out; the message names cause and remedy."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one graded kernel (all its processes together, where so marked). The one place they are written."""

    cpu_seconds: int = 120
    """CPU time of each process."""
    memory_bytes: int = 2 * 1024**3
    """Resident memory of the whole kernel."""
    processes: int = 64
    """Processes and threads of the whole kernel."""
    disk_bytes: int = 200 * 1024**2
    """What the kernel writes to its working folder (watched), and the size of its /tmp (a tmpfs)."""
    file_size_bytes: int = 64 * 1024**2
    """The largest file the kernel may write."""
    open_files: int = 256
    """Open files of each process."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _tools() -> tuple[str, ...]:
    return ("bwrap", "prlimit", "setpriv")


def in_kubernetes() -> bool:
    """Whether this process runs in a Kubernetes pod (Zero to JupyterHub)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) or Path("/var/run/secrets/kubernetes.io").is_dir()


def _tool(name: str) -> str:
    """A program's real path (links resolved): inside the cage only the system's folders are visible, not the PATH's
    links."""
    found = shutil.which(name)
    return os.path.realpath(found) if found else name


def _namespace_args(in_user_namespace: bool) -> list[str]:
    """The namespaces of a cage: a user namespace for a grader that is not root, and always pid, ipc, network and
    hostname."""
    argv = []
    if in_user_namespace:
        argv += ["--unshare-user", "--uid", str(SANDBOX_UID_IN_NAMESPACE), "--gid", str(SANDBOX_UID_IN_NAMESPACE)]
    return argv + [
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
    ]


def _system_binds() -> list[str]:
    """The operating system, read-only: ``/usr``, ``/etc`` and the top-level links or folders into them."""
    argv = []
    for top in ("/usr", "/etc"):
        argv += ["--ro-bind", top, top]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        path = Path(top)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(top), top]
        elif path.is_dir():
            argv += ["--ro-bind", top, top]
    return argv


def _drop_to_uid(uid: int) -> list[str]:
    """As root: the rest of the command as ``uid``, with no groups, capabilities or way back (``setpriv``)."""
    return [
        _tool("setpriv"), f"--reuid={uid}", f"--regid={NOBODY_GID}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


@functools.lru_cache(maxsize=1)
def _cage_problem() -> str | None:
    """Why bubblewrap cannot start a cage like a kernel's here, in its own words, or None when it can.

    The probe has the kernel cage's namespaces, mounts (a new ``/proc``
    included, which a container's masked ``/proc`` forbids), read-only root
    and system-call filter, so a host that passes it can start a graded kernel.
    """
    import tempfile

    from .seccomp import SeccompUnavailable, write_filter

    with tempfile.TemporaryDirectory(prefix="ketamine-probe-") as scratch:
        try:
            seccomp_fd = os.open(write_filter(Path(scratch) / "filter.bpf"), os.O_RDONLY)
        except (SeccompUnavailable, OSError) as problem:
            return f"the system-call filter cannot be built: {problem}"
        try:
            argv = [_tool("bwrap"), "--die-with-parent", *_namespace_args(not _is_root()), *_system_binds()]
            argv += ["--disable-userns"] if not _is_root() else []
            argv += [
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/",
                "--seccomp", str(seccomp_fd), "--",
            ]
            if _is_root():
                argv += _drop_to_uid(FIRST_SANDBOX_UID)
            result = subprocess.run([*argv, "/bin/true"], capture_output=True, text=True, timeout=20,
                                    env={"PATH": "/usr/bin:/bin"}, pass_fds=(seccomp_fd,))
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
        finally:
            os.close(seccomp_fd)
    return (
        None if result.returncode == 0 else (result.stderr.strip()[-500:] or f"bwrap exited with {result.returncode}")
    )


CAGE = "a working cage"
"""What :func:`sandbox_missing` lists when the tools are there but bubblewrap cannot start a cage."""


def sandbox_missing() -> list[str]:
    """What this machine lacks to sandbox grading as the current user (empty when it can)."""
    missing = [tool for tool in _tools() if shutil.which(tool) is None]
    if not missing and _cage_problem():
        missing.append(CAGE)
    return missing


def why_unsandboxed() -> str:
    """Why a learner's own quiz is graded without the sandbox here, in a few words (for "graded without the sandbox
    (...)")."""
    missing = sandbox_missing()
    if missing == [CAGE]:
        return "bubblewrap cannot start its cage here"
    return "bubblewrap is not installed here" if "bwrap" in missing else f"{', '.join(missing)} not installed here"


_OPT_OUT = ("only for code you trust, opt out explicitly (ketamine-grade class --unsandboxed, "
            "or c.BoundedExecute.sandbox = False in nbgrader_config.py).")


def require_sandbox() -> None:
    """Raise :class:`SandboxUnavailable`, naming the cause and the remedy, when grading cannot be sandboxed."""
    missing = sandbox_missing()
    if not missing:
        return
    if missing != [CAGE]:
        raise SandboxUnavailable(
            f"cannot isolate student code: {', '.join(missing)} not found. Install bubblewrap "
            "(Debian: apt-get install bubblewrap; setpriv and prlimit come with util-linux), or, " + _OPT_OUT
        )
    said = _cage_problem()
    if in_kubernetes():
        raise SandboxUnavailable(
            f"cannot isolate student code: this pod does not let bubblewrap start a cage (bubblewrap said: {said}). "
            "The instructor's pod needs unprivileged user namespaces on its node (user.max_user_namespaces > 0) "
            "and, in its "
            "container's securityContext: seccompProfile type Unconfined "
            "(or a Localhost profile that allows unshare, mount "
            "and pivot_root), appArmorProfile type Unconfined on AppArmor nodes, "
            "and procMount: Unmasked with the pod's "
            "hostUsers: false (README.md, 'Zero to JupyterHub'). Nothing was graded; or, " + _OPT_OUT
        )
    if not _is_root():
        raise SandboxUnavailable(
            f"cannot isolate student code: this machine does not let a normal user start bubblewrap's cage "
            f"(bubblewrap said: {said}). Ask the administrator to allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or on Ubuntu 24.04 an AppArmor "
            "profile for bwrap), or grade as root; or, " + _OPT_OUT
        )
    raise SandboxUnavailable(
        f"cannot isolate student code: bubblewrap cannot start a cage here, even as root (bubblewrap said: {said}); "
        "in a container, it needs CAP_SYS_ADMIN or user namespaces, and an unmasked /proc; or, " + _OPT_OUT
    )


# --------------------------------------------------------------------------
# The cage: private folder, watchdog, cleanup
# --------------------------------------------------------------------------


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_directory(name: str, parent: int | None) -> int | None:
    """A folder opened without following a link (relative to ``parent``); made readable first if the kernel hid it."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except PermissionError:
        pass
    except OSError:
        return None  # gone, or swapped for a link: never followed
    try:  # unreadable (chmod 0300): through a handle on that very folder, never through its name
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return None
    try:
        os.chmod(f"/proc/self/fd/{handle}", 0o700)
        return os.open(name, _DIRECTORY, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(handle)


def _tree_usage(folder: Path, limit_entries: int) -> tuple[int, int]:
    """(bytes on disk, entries) under ``folder``, never following a link; stops counting past ``limit_entries``.

    Every folder is opened relative to its parent's descriptor without
    following links, so a link the kernel puts where a folder was (even
    between listing and opening) is never followed; a folder the kernel made
    unreadable is made readable again through a handle on that folder itself.
    """
    total, entries = 0, 0
    top = _open_directory(str(folder), None)
    stack = [top] if top is not None else []
    try:
        while stack and entries <= limit_entries:
            directory = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    for entry in listing:
                        entries += 1
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        total += max(
                            info.st_size if stat.S_ISREG(info.st_mode) else 0, getattr(info, "st_blocks", 0) * 512
                        )
                        if stat.S_ISDIR(info.st_mode):
                            child = _open_directory(entry.name, directory)
                            if child is not None:
                                stack.append(child)
            except OSError:
                pass
            finally:
                os.close(directory)
    finally:
        for directory in stack:
            os.close(directory)
    return total, entries


def _unlinked_bytes(pids: list[int]) -> int:
    """Bytes held in files the kernel's processes keep open but that no folder shows (memfd, deleted files)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not (target.startswith("/memfd:") or target.endswith(" (deleted)")):
                    continue
                info = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += max(info.st_size, getattr(info, "st_blocks", 0) * 512)
    return total


def remove_tree(folder: Path) -> None:
    """Remove a folder a kernel wrote in, however deep and whatever modes it set (coreutils, not Python's recursion)."""
    if not folder.exists():
        return
    subprocess.run(["chmod", "-R", "u+rwX", str(folder)], capture_output=True, check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], capture_output=True, check=False)


class KernelCage:
    """The private folder, cgroups and watchdog of one graded kernel; :meth:`close` leaves nothing behind.

    Layout of the private folder (``ketamine-kernel-*`` in the system's temporary folder)::

        work/   the kernel's working folder: copies of the student's own files
        run/    the connection file and the kernel's sockets
    """

    MAX_ENTRIES = 10_000
    """Files and folders the kernel may create (beyond this the watchdog stops it)."""

    def __init__(self, limits: SandboxLimits, sandboxed: bool = True) -> None:
        self.limits = limits
        self.sandboxed = sandboxed
        self.private = Path(tempfile.mkdtemp(prefix="ketamine-kernel-", dir=private_folder_base()))
        self.workdir, self.run = self.private / "work", self.private / "run"
        self.uid = FIRST_SANDBOX_UID + sandbox_uid_offset() if _is_root() and sandboxed else None
        self.cgroups: KernelCgroup | None = (
            kernel_cgroup(self.private.name, limits.memory_bytes, limits.processes) if sandboxed else None
        )
        self.stopped: str | None = None
        self._pid: int | None = None
        self._watch: threading.Thread | None = None
        self._closing = threading.Event()
        self.seccomp_fd: int | None = None
        self.args_fd: int | None = None

    def populate(self, source: Path) -> None:
        """Copy the student's own files (no notebook: they may hold hidden tests) from ``source`` into the working
        folder."""
        from .intake import safe_copy_tree

        safe_copy_tree(
            source, self.workdir, ignore=["*.ipynb", ".ipynb_checkpoints", "__pycache__"],
            max_total_bytes=self.limits.disk_bytes,
        )
        self.run.mkdir(mode=0o700)
        # the system-call filter bubblewrap loads: in the private folder, which the kernel never sees
        if self.sandboxed:
            from .seccomp import write_filter

            self.seccomp_fd = os.open(write_filter(self.private / "seccomp.bpf"), os.O_RDONLY | os.O_CLOEXEC)
        if self.uid is not None:  # root: hand the three folders to the kernel's uid, and nothing else
            self.private.chmod(0o711)
            for folder in (self.workdir, self.run):
                for directory, folders, files in os.walk(folder):
                    for name in [directory, *(os.path.join(directory, f) for f in folders + files)]:
                        os.lchown(name, self.uid, NOBODY_GID)
                folder.chmod(0o700)

    def own(self, path: Path) -> None:
        """Give a file the grader wrote (the connection file) to the kernel's uid, readable only by it."""
        path.chmod(0o600)
        if self.uid is not None:
            os.chown(path, self.uid, NOBODY_GID)

    def watch(self, pid: int) -> None:
        """Start the watchdog on the kernel's outermost process (bwrap, or the kernel itself unsandboxed)."""
        self._pid = pid
        self._watch = threading.Thread(target=self._run_watch, name=f"watch-{pid}", daemon=True)
        self._watch.start()

    def _run_watch(self) -> None:
        import psutil

        while not self._closing.wait(0.1):
            reason = None
            used, entries = 0, 0
            for folder in (self.workdir, self.run):
                size, count = _tree_usage(folder, self.MAX_ENTRIES)
                used, entries = used + size, entries + count
            try:
                root = psutil.Process(self._pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                processes = []
            if self.cgroups is not None and self._pid is not None:
                self.cgroups.running(self._pid)
            unlinked = _unlinked_bytes([p.pid for p in processes])
            if self.sandboxed and len(processes) > 1:
                used += self.tmpfs_used([p.pid for p in processes])
            if used + unlinked > self.limits.disk_bytes:
                reason = f"it wrote more than {self.limits.disk_bytes / 1024**2:g} MB"
            elif entries > self.MAX_ENTRIES:
                reason = f"it created more than {self.MAX_ENTRIES} files"
            elif self.cgroups is None or not self.cgroups.limits_memory:
                rss = 0
                for process in processes:
                    try:
                        rss += process.memory_info().rss
                    except psutil.Error:
                        pass
                if rss + unlinked > self.limits.memory_bytes:
                    reason = f"it used more than {self.limits.memory_bytes / 1024**3:g} GiB of memory"
            if reason:
                self.stopped = reason
                self.kill()
                return

    def stop_reason(self) -> str | None:
        """Why the cage stopped the kernel, if it did (a limit), in words."""
        if self.stopped is None and self.cgroups is not None and self.cgroups.hit_memory_limit():
            self.stopped = f"it used more than {self.limits.memory_bytes / 1024**3:g} GiB of memory"
        return self.stopped

    def kill(self) -> None:
        """Kill every process of the kernel (the pid namespace dies with its first process)."""
        import psutil

        if self._pid is not None:
            try:
                root = psutil.Process(self._pid)
                for process in [*root.children(recursive=True), root]:
                    try:
                        process.kill()
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
        if self.cgroups is not None:
            self.cgroups.kill_and_remove()

    def close(self) -> None:
        """Kill what is left of the kernel, reap it, and remove its cgroups and private folder."""
        self._closing.set()
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join(timeout=5)
        self.kill()
        if self._pid is not None:  # reap it: no defunct bwrap left in the grader
            for _ in range(100):
                try:
                    if os.waitpid(self._pid, os.WNOHANG) != (0, 0):
                        break
                except ChildProcessError:
                    break
                time.sleep(0.02)
        for fd in (self.seccomp_fd, self.args_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.seccomp_fd = self.args_fd = None
        remove_tree(self.private)

    def inherited_fds(self) -> tuple[int, ...]:
        """The descriptors bubblewrap reads its arguments and the system-call filter from."""
        return tuple(fd for fd in (self.args_fd, self.seccomp_fd) if fd is not None)

    def tmpfs_used(self, pids: list[int]) -> int:
        """Bytes the kernel holds in its own ``/tmp`` and ``/dev/shm`` (tmpfs: memory, no folder the grader watches).

        Read through a process of the cage (``/proc/PID/root``); a cage that
        hides them (a non-dumpable process) is counted as full.
        """
        host = os.stat("/tmp").st_dev
        for pid in reversed(pids):  # the innermost process is surely inside the cage
            total, seen = 0, False
            for folder, size in (("tmp", self.limits.disk_bytes), ("dev/shm", SHM_BYTES)):
                path = f"/proc/{pid}/root/{folder}"
                try:
                    if os.stat(path).st_dev == host:
                        break
                    usage = os.statvfs(path)
                except OSError:
                    total += size
                    continue
                seen = True
                total += (usage.f_blocks - usage.f_bfree) * usage.f_frsize
            else:
                if seen:
                    return total
        return 0


# --------------------------------------------------------------------------
# The bubblewrap command line
# --------------------------------------------------------------------------


def _course_package_binds() -> tuple[list[str], dict[str, str]]:
    """Bind the course package and its data at a neutral path (not the course's own) when they lie outside the
    environment."""
    from .. import data

    package = Path(__file__).resolve().parents[1]
    argv: list[str] = []
    environment: dict[str, str] = {}
    if not package.is_relative_to(Path(sys.prefix).resolve()):
        argv += ["--ro-bind", str(package), f"{PACKAGE_MOUNT}/lib/{package.name}"]
        environment["PYTHONPATH"] = f"{PACKAGE_MOUNT}/lib"
    argv += ["--ro-bind", str(data.data_dir().resolve()), f"{PACKAGE_MOUNT}/data"]
    environment["KETAMINE_COURSE_DATA"] = f"{PACKAGE_MOUNT}/data"
    return argv, environment


def sandbox_argv(command: list[str], cage: KernelCage) -> list[str]:
    """Wrap a kernel command in bwrap + prlimit (+ setpriv to the cage's uid, as root), entered through its cgroup.

    Mounts apply in the order given: the kernel's own ``/tmp`` (a sized tmpfs)
    comes before everything bound into the cage, so an environment, a course
    or a temporary folder under the host's ``/tmp`` still shows through.
    """
    limits = cage.limits
    argv = ["--die-with-parent", "--new-session", *_namespace_args(cage.uid is None), *_system_binds()]
    if cage.uid is None:
        argv.append("--disable-userns")  # no user namespace inside this one
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # /tmp and /dev/shm: tmpfs of a fixed size (memory the kernel cannot grow past), mounted first
    argv += ["--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", "/tmp"]
    argv += ["--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    made: set[str] = {"/", "/usr", "/etc", "/tmp", "/proc", "/dev"}

    def parents(path: str) -> list[str]:
        # bwrap creates missing parent folders root-only; the kernel's uid must be able to pass through them
        out = []
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for prefix in sorted({sys.base_prefix, sys.prefix}):
        if Path(prefix).exists() and prefix != "/usr":
            argv += parents(prefix) + ["--ro-bind", prefix, prefix]
    package_binds, environment = _course_package_binds()
    argv += parents(f"{PACKAGE_MOUNT}/lib/x") + package_binds
    # Jupyter's and nbgrader's configuration folders of the environment and the machine:
    # hidden behind empty read-only folders
    for config in (Path(sys.prefix) / "etc" / "jupyter", Path("/etc/jupyter"), Path("/usr/local/etc/jupyter")):
        if config.is_dir():
            argv += ["--tmpfs", str(config), "--remount-ro", str(config)]
    for folder in (cage.run, cage.workdir):
        argv += parents(str(folder)) + ["--bind", str(folder), str(folder)]
    # nothing else is writable: the cage's own root and /dev (tmpfs bubblewrap made) become read-only
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(cage.workdir)]
    if cage.seccomp_fd is not None:
        argv += ["--seccomp", str(cage.seccomp_fd)]
    environment.update({
        "HOME": "/tmp",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": str(cage.run),
        "JUPYTER_CONFIG_DIR": "/tmp/jupyter",
        "JUPYTER_DATA_DIR": "/tmp/jupyter-data",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    })
    if os.environ.get("NBGRADER_EXECUTION"):
        environment["NBGRADER_EXECUTION"] = os.environ["NBGRADER_EXECUTION"]
    argv.append("--clearenv")
    for name, value in environment.items():
        argv += ["--setenv", name, value]
    # The cage's setup reaches bubblewrap through a file, not its command line: inside the cage, /proc/1/cmdline
    # (bubblewrap's reaper) shows "bwrap --args N" and the kernel's command, never the grader's paths and settings.
    arguments = cage.private / "bwrap.args"
    arguments.unlink(missing_ok=True)
    with open(
        arguments, "wb", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW | os.O_EXCL, 0o600)
    ) as handle:
        handle.write(b"".join(os.fsencode(a) + b"\0" for a in argv))
    if cage.args_fd is not None:
        os.close(cage.args_fd)
    cage.args_fd = os.open(arguments, os.O_RDONLY | os.O_CLOEXEC)
    argv = [_tool("bwrap"), "--args", str(cage.args_fd)]
    argv += [
        "--",
        _tool("prlimit"),
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.processes}",
        f"--fsize={min(limits.file_size_bytes, limits.disk_bytes)}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]
    if cage.uid is not None:
        argv += _drop_to_uid(cage.uid)
    cgroup_prefix = cage.cgroups.enter_command() if cage.cgroups is not None else []
    return lifeline() + cgroup_prefix + argv + list(command)


def lifeline() -> list[str]:
    """A prefix that ties the cage to this grader: killed the moment the grader dies, however it dies.

    ``setpriv --pdeathsig KILL`` asks the kernel to kill it when its parent
    dies; the shell then checks that its parent is still this grader (had the
    grader died before that request, the signal would never come) and runs
    the rest. Bubblewrap's own ``--die-with-parent`` alone leaves that window
    open: a grader killed while a cage was starting left its kernel running.
    """
    check = '[ "$PPID" = "$1" ] || exit 111; shift; exec "$@"'
    return [_tool("setpriv"), "--pdeathsig", "KILL", "--", "/bin/sh", "-c", check, "sh", str(os.getpid())]


def launcher_environment() -> dict[str, str]:
    """The environment bubblewrap (and the cgroup step before it) starts with: fixed, nothing of the grader's.

    A systemd user scope needs the way to the user's manager, and nothing else.
    """
    environment = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for name in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        if name in os.environ and current_plan().kind == "systemd":
            environment[name] = os.environ[name]
    return environment


class KernelStartFailed(RuntimeError):
    """The kernel died before it answered; the message holds its last lines of error output."""


class ErrorTail:
    """The last lines a process writes to its error output, read from a pipe in a thread, at most ``max_bytes`` kept.

    The pipe is always drained, so a process writing without end never blocks
    on it, and nothing it writes reaches the disk.
    """

    def __init__(self, max_bytes: int = 4096) -> None:
        self.max_bytes = max_bytes
        self._kept = b""
        self._read_end, self.write_end = os.pipe()
        self._thread = threading.Thread(target=self._drain, name="kernel-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            self._kept = (self._kept + chunk)[-self.max_bytes:]
        os.close(self._read_end)

    def started(self) -> None:
        """The process has its copy of the write end: close ours, so the pipe ends when the process does."""
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1

    def text(self, lines: int = 8, wait_s: float = 1.0) -> str:
        """The last ``lines`` lines, printable (what a kernel writes is the student's), once the process has ended."""
        from .intake import printable

        self.started()
        self._thread.join(timeout=wait_s)
        kept = self._kept.decode("utf-8", "replace").splitlines()
        shown = [printable(line, 300) for line in kept if line.strip()][-lines:]
        return " | ".join(shown)


def kernel_start_failure(error: BaseException, tail: str) -> KernelStartFailed:
    """The error for a kernel that died before it answered, in words, with what it said last."""
    said = f"; its last words: {tail}" if tail else " (it wrote nothing to its error output)"
    return KernelStartFailed(f"the grading kernel could not start ({type(error).__name__}: {error}){said}")
