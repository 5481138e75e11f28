"""Hard memory and process limits for a whole graded kernel, through whichever cgroups the host gives the grader.

A kernel's processes share one limit only inside a control group (cgroup).
Which kind the grader gets depends on the host, and ``ketamine-grade doctor``
says which (:func:`describe`):

* **cgroup v2**, what Debian 12 and 13, Ubuntu 22.04 and later and every
  current distribution boot. Each kernel gets a cgroup of its own with
  ``memory.max``, ``memory.swap.max = 0``, ``memory.oom.group = 1`` (an
  out-of-memory kill takes the whole kernel) and ``pids.max``, under a parent
  the grader may manage:

  - *as root*: ``<cgroup2 mount>/ketamine-grade``, made once, the memory and
    pids controllers enabled from the root;
  - *in a delegated subtree* (the grader started by ``systemd-run --user
    --scope -p Delegate=yes ketamine-grade ...``, a systemd service with
    ``Delegate=yes``, a container given a cgroup of its own): the grader, the
    only process of its cgroup, moves itself into a leaf ``ketamine-grader``
    and makes the kernels' cgroups beside it;
  - *as a normal user with a systemd user manager* (a desktop or SSH login):
    each kernel in a transient scope, ``systemd-run --user --scope -p
    MemoryMax=… -p MemorySwapMax=0 -p TasksMax=…``.

* **cgroup v1**, on hosts that still mount it (hybrid hosts, older ones): a
  memory and a pids cgroup under the grader's own, where it may write them.

* **none** (a normal user on a host that delegates nothing): the sandbox's
  watchdog sums the kernel's resident memory ten times a second and stops it
  above the limit; processes are counted by ``RLIMIT_NPROC`` inside the
  kernel's own uid.

Everything here reads the host through :class:`CgroupHost`, so the choice and
the files written can be tested against a simulated cgroup tree.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = [
    "CgroupHost", "CgroupPlan", "KernelCgroup", "read_host", "plan_for", "current_plan", "kernel_cgroup", "describe",
    "V2_PARENT", "V2_GRADER_LEAF",
]

V2_PARENT = "ketamine-grade"
"""As root, the cgroup (at the top of the cgroup v2 tree) under which kernels' cgroups are made."""
V2_GRADER_LEAF = "ketamine-grader"
"""In a delegated subtree, the leaf the grader moves itself into, so that its cgroup may hand controllers to kernels."""
WANTED = frozenset({"memory", "pids"})


@dataclass(frozen=True)
class CgroupHost:
    """What the grader's process sees of the host's cgroups."""

    v2_mount: Path | None = None
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` on a pure v2 host), if it is."""
    v2_own: str | None = None
    """This process's cgroup in it (``/user.slice/...``), relative to the mount."""
    v1: dict[str, Path] = field(default_factory=dict)
    """cgroup v1: controller -> this process's own cgroup folder for it."""
    root: bool = False
    """Whether the grader runs as root."""
    pid: int = 0
    """The grader's process id."""


def _controllers(path: Path) -> set[str]:
    """The controllers a cgroup v2 file lists (``cgroup.controllers`` or ``cgroup.subtree_control``)."""
    try:
        return {word.lstrip("+") for word in path.read_text().split()}
    except OSError:
        return set()


def _relative(path: str, mount_root: str) -> str:
    """A path from ``/proc/self/cgroup`` relative to a mount whose root is ``mount_root`` (``/`` unless
    bind-mounted)."""
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        path = path[len(mount_root.rstrip("/")):] or "/"
    return path


def read_host(mountinfo: str | None = None, own: str | None = None) -> CgroupHost:
    """Read this process's cgroups from ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` (or the texts given)."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
        own = Path("/proc/self/cgroup").read_text() if own is None else own
    except OSError:
        return CgroupHost(root=os.geteuid() == 0, pid=os.getpid())
    v2_mount: tuple[Path, str] | None = None
    v1_mounts: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mount_root, point = fields[3], Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2" and v2_mount is None:
            v2_mount = (point, mount_root)
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                v1_mounts.setdefault(option, (point, mount_root))
    v2_own = None
    v1: dict[str, Path] = {}
    for line in own.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and not controllers and v2_mount is not None:
            v2_own = _relative(path, v2_mount[1])
        for controller in controllers.split(","):
            if controller in WANTED and controller in v1_mounts:
                point, mount_root = v1_mounts[controller]
                v1[controller] = point / _relative(path, mount_root).lstrip("/")
    return CgroupHost(v2_mount[0] if v2_mount else None, v2_own, v1, os.geteuid() == 0, os.getpid())


@dataclass(frozen=True)
class CgroupPlan:
    """How this grader limits its kernels: ``kind`` is ``v2``, ``systemd``, ``v1`` or ``none``."""

    kind: str
    why: str
    """In words, for ``ketamine-grade doctor``."""
    parent: Path | None = None
    """cgroup v2: the cgroup under which each kernel's cgroup is made."""
    v1: dict[str, Path] = field(default_factory=dict)
    """cgroup v1: controller -> the folder under which each kernel's cgroup is made."""

    @property
    def limits_memory(self) -> bool:
        return self.kind in ("v2", "systemd") or "memory" in self.v1


def _write(path: Path, text: str) -> bool:
    try:
        path.write_text(text)
        return True
    except OSError:
        return False


def _enable(cgroup: Path, controllers: frozenset[str]) -> bool:
    """Hand ``controllers`` to the children of ``cgroup`` (true when they are handed, already or now)."""
    missing = controllers - _controllers(cgroup / "cgroup.subtree_control")
    if missing and not _write(cgroup / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(missing))):
        return False
    return controllers <= _controllers(cgroup / "cgroup.subtree_control")


def _v2_as_root(host: CgroupHost) -> CgroupPlan | None:
    """Root: kernels' cgroups under ``<mount>/ketamine-grade``, the controllers enabled from the top of the tree."""
    assert host.v2_mount is not None
    top = host.v2_mount
    if not WANTED <= _controllers(top / "cgroup.controllers") or not _enable(top, WANTED):
        return None
    parent = top / V2_PARENT
    try:
        parent.mkdir(exist_ok=True)
    except OSError:
        return None
    if not _enable(parent, WANTED):
        return None
    return CgroupPlan("v2", f"cgroup v2: each kernel in a cgroup of its own under {parent} (as root)", parent=parent)


def _v2_delegated(host: CgroupHost) -> CgroupPlan | None:
    """A delegated subtree: the grader alone in its own writable cgroup moves into a leaf and hands controllers down."""
    assert host.v2_mount is not None and host.v2_own is not None
    own = host.v2_mount / host.v2_own.lstrip("/")
    if own.name == V2_GRADER_LEAF and WANTED <= _controllers(own.parent / "cgroup.subtree_control"):
        own = own.parent  # moved there earlier (a forked worker, or a second plan)
        return CgroupPlan(
            "v2", f"cgroup v2: each kernel in a cgroup of its own under {own} (a delegated subtree)", parent=own
        )
    if host.v2_own == "/" or not all(
        os.access(own / name, os.W_OK) for name in ("", "cgroup.procs", "cgroup.subtree_control")
    ):
        return None
    if not WANTED <= _controllers(own / "cgroup.controllers"):
        return None
    try:
        others = {int(p) for p in (own / "cgroup.procs").read_text().split()} - {host.pid}
    except (OSError, ValueError):
        return None
    if others:  # another process shares the grader's cgroup (its shell, say): it cannot hand controllers down
        return None
    leaf = own / V2_GRADER_LEAF
    try:
        leaf.mkdir(exist_ok=True)
    except OSError:
        return None
    if not _write(leaf / "cgroup.procs", str(host.pid)) or not _enable(own, WANTED):
        return None
    return CgroupPlan(
        "v2", f"cgroup v2: each kernel in a cgroup of its own under {own} (a delegated subtree)", parent=own
    )


@functools.lru_cache(maxsize=1)
def _systemd_user_scopes() -> bool:
    """Whether this user's systemd manager makes transient scopes with memory and task limits (tried once)."""
    if shutil.which("systemd-run") is None:
        return False
    try:
        tried = subprocess.run(
            [
                "systemd-run", "--user", "--scope", "--quiet", "--collect", "-p", "MemoryMax=64M", "-p", "TasksMax=8",
                "--", "true",
            ],
            capture_output=True, timeout=20, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return tried.returncode == 0


def plan_for(host: CgroupHost) -> CgroupPlan:
    """The best way to limit kernels on this host: cgroup v2, a systemd user scope, cgroup v1, or none."""
    if host.v2_mount is not None and host.v2_own is not None:
        found = _v2_as_root(host) if host.root else None
        found = found or _v2_delegated(host)
        if found:
            return found
        if not host.root and _systemd_user_scopes():
            return CgroupPlan(
                "systemd", "cgroup v2: each kernel in a transient systemd scope of this user's (MemoryMax, TasksMax)"
            )
    writable = {c: f for c, f in host.v1.items() if f.is_dir() and os.access(f, os.W_OK)}
    if writable:
        names = " and ".join(sorted(writable))
        return CgroupPlan(
            "v1", f"cgroup v1: a {names} cgroup per kernel under " + ", ".join(str(f) for f in writable.values()),
            v1=writable,
        )
    if host.v2_mount is not None:
        why = ("cgroup v2 is mounted, but this grader may not make cgroups with memory and pids limits "
               "(run as root, or start it in a delegated scope: "
               "systemd-run --user --scope -p Delegate=yes ketamine-grade ...)")
    else:
        why = "no cgroups this grader may use"
    return CgroupPlan(
        "none", f"none: {why}; the watchdog stops a kernel above its memory, processes are counted per uid"
    )


@functools.lru_cache(maxsize=1)
def current_plan() -> CgroupPlan:
    """This process's plan, found once (a parallel run finds it before forking, so workers share it)."""
    return plan_for(read_host())


def describe() -> str:
    """Which limits this host gives a graded kernel, in words."""
    return current_plan().why


class KernelCgroup(Protocol):
    """The cgroup(s) of one kernel."""

    @property
    def limits_memory(self) -> bool: ...

    def enter_command(self) -> list[str]: ...

    def running(self, pid: int) -> None: ...

    def hit_memory_limit(self) -> bool: ...

    def kill_and_remove(self) -> None: ...


def _move_into(procs_files: list[Path]) -> list[str]:
    """A shell prefix that moves itself into cgroups (writing its pid to each ``cgroup.procs``), then runs the rest."""
    if not procs_files:
        return []
    moves = " && ".join(f"echo $$ > {shlex.quote(str(f))}" for f in procs_files)
    return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh"]


def _out_of_memory(folder: Path) -> bool:
    """Whether a cgroup v2's memory limit stopped one of its processes (``memory.events``)."""
    try:
        events = dict(line.split() for line in (folder / "memory.events").read_text().splitlines() if line.strip())
        return int(events.get("oom_kill", 0)) > 0 or int(events.get("oom", 0)) > 0
    except (OSError, ValueError):
        return False


def _kill_members(folder: Path) -> None:
    """Kill every process of a cgroup (``cgroup.kill`` where the kernel has it), waiting until none is left."""
    _write(folder / "cgroup.kill", "1")
    for _ in range(50):
        try:
            pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


class V2KernelCgroup:
    """A kernel's own cgroup v2 under ``parent``: memory (no swap, killed as a whole), pids; only the controllers
    ``parent`` hands down."""

    def __init__(self, parent: Path, name: str, memory_bytes: int, processes: int) -> None:
        self.folder = parent / name
        self.folder.mkdir()
        handed = _controllers(parent / "cgroup.subtree_control")
        self.limits_memory = False
        if "memory" in handed:
            self.limits_memory = _write(self.folder / "memory.max", str(memory_bytes))
            _write(self.folder / "memory.swap.max", "0")
            _write(self.folder / "memory.oom.group", "1")
        if "pids" in handed:
            _write(self.folder / "pids.max", str(processes))

    def enter_command(self) -> list[str]:
        return _move_into([self.folder / "cgroup.procs"])

    def running(self, pid: int) -> None:
        pass

    def hit_memory_limit(self) -> bool:
        return _out_of_memory(self.folder)

    def kill_and_remove(self) -> None:
        _kill_members(self.folder)
        try:
            self.folder.rmdir()
        except OSError:
            pass


class SystemdScope:
    """A kernel in a transient scope of the user's systemd manager, which enforces its memory and task limits."""

    limits_memory = True

    def __init__(self, name: str, memory_bytes: int, processes: int) -> None:
        self.unit = f"{name}.scope"
        self.memory_bytes, self.processes = memory_bytes, processes
        self.folder: Path | None = None

    def enter_command(self) -> list[str]:
        return [
            "systemd-run", "--user", "--scope", "--quiet", "--collect", f"--unit={self.unit}",
            "-p", f"MemoryMax={self.memory_bytes}", "-p", "MemorySwapMax=0", "-p", f"TasksMax={self.processes}", "--",
        ]

    def running(self, pid: int) -> None:
        """Remember the scope's cgroup folder from a process in it (the watchdog calls this while the kernel runs)."""
        if self.folder is not None:
            return
        host = read_host()
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("0::") and host.v2_mount is not None and line.endswith(self.unit):
                self.folder = host.v2_mount / line[3:].lstrip("/")

    def hit_memory_limit(self) -> bool:
        return self.folder is not None and _out_of_memory(self.folder)

    def kill_and_remove(self) -> None:
        if self.folder is not None:
            _kill_members(self.folder)  # systemd removes the scope once it is empty (--collect)


class V1KernelCgroups:
    """A memory and a pids cgroup (v1) of a kernel's own, under the grader's own where it may write."""

    def __init__(self, parents: dict[str, Path], name: str, memory_bytes: int, processes: int) -> None:
        self.folders: dict[str, Path] = {}
        for controller, parent in parents.items():
            folder = parent / name
            try:
                folder.mkdir()
                if controller == "memory":
                    (folder / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    swap = folder / "memory.memsw.limit_in_bytes"
                    if swap.exists():
                        swap.write_text(str(memory_bytes))
                else:
                    (folder / "pids.max").write_text(str(processes))
            except OSError:
                try:
                    folder.rmdir()
                except OSError:
                    pass
                continue
            self.folders[controller] = folder

    @property
    def limits_memory(self) -> bool:
        return "memory" in self.folders

    def enter_command(self) -> list[str]:
        return _move_into([f / "cgroup.procs" for f in self.folders.values()])

    def running(self, pid: int) -> None:
        pass

    def hit_memory_limit(self) -> bool:
        folder = self.folders.get("memory")
        try:
            return folder is not None and int((folder / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def kill_and_remove(self) -> None:
        for folder in self.folders.values():
            _kill_members(folder)
            try:
                folder.rmdir()
            except OSError:
                pass


def kernel_cgroup(name: str, memory_bytes: int, processes: int, plan: CgroupPlan | None = None) -> KernelCgroup | None:
    """The cgroup(s) for one kernel by the host's plan, or None where the host gives the grader none."""
    plan = plan or current_plan()
    try:
        if plan.kind == "v2" and plan.parent is not None:
            return V2KernelCgroup(plan.parent, name, memory_bytes, processes)
        if plan.kind == "systemd":
            return SystemdScope(name, memory_bytes, processes)
        if plan.kind == "v1":
            made = V1KernelCgroups(plan.v1, name, memory_bytes, processes)
            return made if made.folders else None
    except OSError:
        return None
    return None
