"""Whole-kernel limits through the host's cgroups: which kind each host gets, and what is written where.

The build machine is hybrid (cgroup v1 controllers, a controller-less cgroup2
beside them); the course's users' hosts are pure cgroup v2. So the choice and
the files written are tested against simulated cgroup trees (folders laid out
as the kernel lays out cgroupfs), the v2 mechanics that this machine has
(making a cgroup, moving a process into it, killing everything in it, removing
it) on the real cgroup2 mount, and a graded kernel is run with a simulated v2
plan to show the cage enters and fills its cgroup.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ketamine_course.grading import cgroups
from ketamine_course.grading.cgroups import CgroupHost, CgroupPlan, V2KernelCgroup, plan_for, read_host

HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_OWN = "8:pids:/\n4:memory:/process_api/abc\n0::/\n"
PURE_V2_MOUNTS = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
PURE_V2_OWN = "0::/user.slice/user-1000.slice/session-3.scope\n"


def test_a_hybrid_host_is_read_as_v1_controllers_beside_a_v2_mount() -> None:
    host = read_host(HYBRID_MOUNTS, HYBRID_OWN)
    assert host.v2_mount == Path("/sys/fs/cgroup/unified") and host.v2_own == "/"
    assert host.v1 == {"memory": Path("/sys/fs/cgroup/memory/process_api/abc"), "pids": Path("/sys/fs/cgroup/pids")}


def test_a_pure_v2_host_is_read_as_v2_only() -> None:
    host = read_host(PURE_V2_MOUNTS, PURE_V2_OWN)
    assert host.v2_mount == Path("/sys/fs/cgroup") and host.v2_own == "/user.slice/user-1000.slice/session-3.scope"
    assert host.v1 == {}


def test_a_bind_mounted_subtree_is_read_relative_to_its_root() -> None:
    """A container given its cgroup as a bind mount (no cgroup namespace): /proc/self/cgroup names the host's path."""
    mounts = "50 40 0:26 /kubepods/pod1/c1 /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n"
    host = read_host(mounts, "0::/kubepods/pod1/c1\n")
    assert host.v2_own == "/"


def test_this_host_is_read_without_error() -> None:
    host = read_host()
    assert host.pid == os.getpid()
    assert cgroups.describe()


def _fake_v2(tmp_path: Path, own: str, controllers: str = "cpu io memory pids", owner_only: bool = False) -> Path:
    """A simulated cgroup v2 mount: the root with its controllers, and the grader's own cgroup holding only the grader."""
    mount = tmp_path / "cgroup"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text(controllers + "\n")
    (mount / "cgroup.subtree_control").write_text("")
    folder = mount / own.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cgroup.controllers").write_text(controllers + "\n")
    (folder / "cgroup.subtree_control").write_text("")
    (folder / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return mount


def test_as_root_on_a_pure_v2_host_kernels_get_cgroups_under_ketamine_grade(tmp_path: Path) -> None:
    mount = _fake_v2(tmp_path, "/user.slice/user-0.slice/session-1.scope")
    plan = plan_for(CgroupHost(mount, "/user.slice/user-0.slice/session-1.scope", {}, root=True, pid=os.getpid()))
    assert plan.kind == "v2" and plan.parent == mount / "ketamine-grade" and plan.limits_memory
    assert {"memory", "pids"} <= set((mount / "cgroup.subtree_control").read_text().replace("+", "").split())
    assert {"memory", "pids"} <= set((plan.parent / "cgroup.subtree_control").read_text().replace("+", "").split())


def test_as_root_without_the_controllers_it_falls_back(tmp_path: Path) -> None:
    """This build machine's cgroup2: its memory and pids controllers are bound to v1."""
    mount = _fake_v2(tmp_path, "/", controllers="hugetlb")
    v1 = tmp_path / "v1-memory"
    v1.mkdir()
    plan = plan_for(CgroupHost(mount, "/", {"memory": v1}, root=True, pid=os.getpid()))
    assert plan.kind == "v1" and plan.v1 == {"memory": v1}


def test_a_grader_alone_in_a_delegated_cgroup_moves_into_a_leaf_and_hands_down_the_controllers(tmp_path: Path) -> None:
    own = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-grader.scope"
    mount = _fake_v2(tmp_path, own)
    plan = plan_for(CgroupHost(mount, own, {}, root=False, pid=os.getpid()))
    folder = mount / own.lstrip("/")
    assert plan.kind == "v2" and plan.parent == folder
    assert (folder / "ketamine-grader" / "cgroup.procs").read_text() == str(os.getpid())
    assert {"memory", "pids"} <= set((folder / "cgroup.subtree_control").read_text().replace("+", "").split())


def test_a_delegated_cgroup_shared_with_another_process_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = "/user.slice/user-1000.slice/user@1000.service/app.slice/shell.scope"
    mount = _fake_v2(tmp_path, own)
    (mount / own.lstrip("/") / "cgroup.procs").write_text(f"{os.getpid()}\n{os.getppid()}\n")
    monkeypatch.setattr(cgroups, "_systemd_user_scopes", lambda: False)
    plan = plan_for(CgroupHost(mount, own, {}, root=False, pid=os.getpid()))
    assert plan.kind == "none" and "systemd-run --user --scope -p Delegate=yes" in plan.why
    assert not (mount / own.lstrip("/") / "ketamine-grader").exists()


def test_a_normal_user_with_a_systemd_manager_gets_a_scope_per_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd-run as a stand-in that records its arguments and runs the command, as the real one does in a scope."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "systemd-run"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cgroups._systemd_user_scopes.cache_clear()
    try:
        mount = _fake_v2(tmp_path, PURE_V2_OWN[3:].strip())
        (mount / PURE_V2_OWN[3:].strip().lstrip("/") / "cgroup.procs").write_text("1\n2\n")  # a login session: not the grader's alone
        plan = plan_for(CgroupHost(mount, PURE_V2_OWN[3:].strip(), {}, root=False, pid=os.getpid()))
    finally:
        cgroups._systemd_user_scopes.cache_clear()
    assert plan.kind == "systemd" and plan.limits_memory
    scope = cgroups.kernel_cgroup("ketamine-kernel-test", 2 * 1024**3, 64, plan)
    assert scope is not None
    done = subprocess.run([*scope.enter_command(), "sh", "-c", "echo ran"], capture_output=True, text=True, check=True)
    assert done.stdout == "ran\n"
    assert f"--unit=ketamine-kernel-test.scope -p MemoryMax={2 * 1024**3} -p MemorySwapMax=0 -p TasksMax=64 --" in calls.read_text()


def test_a_kernel_cgroup_v2_gets_its_limits_and_is_entered_by_the_kernels_first_process(tmp_path: Path) -> None:
    parent = tmp_path / "ketamine-grade"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("memory pids\n")
    kernel = V2KernelCgroup(parent, "ketamine-kernel-x", 123456789, 64)
    assert kernel.limits_memory
    assert (kernel.folder / "memory.max").read_text() == "123456789"
    assert (kernel.folder / "memory.swap.max").read_text() == "0"
    assert (kernel.folder / "memory.oom.group").read_text() == "1"
    assert (kernel.folder / "pids.max").read_text() == "64"
    done = subprocess.run([*kernel.enter_command(), "sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    assert (kernel.folder / "cgroup.procs").read_text().strip() == done.stdout.strip(), "the pid that runs the kernel is the one moved"
    assert not kernel.hit_memory_limit()
    (kernel.folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert kernel.hit_memory_limit()


def _real_v2_parent() -> Path | None:
    host = read_host()
    if os.geteuid() != 0 or host.v2_mount is None or not os.access(host.v2_mount, os.W_OK):
        return None
    return host.v2_mount


@pytest.mark.skipif(_real_v2_parent() is None, reason="needs root and a writable cgroup2 mount")
def test_on_the_real_cgroup2_a_kernel_cgroup_holds_its_processes_and_is_emptied_and_removed() -> None:
    """As far as this host allows: a real cgroup v2 (without the controllers it lacks), a process moved in, everything killed, removed."""
    mount = _real_v2_parent()
    assert mount is not None
    parent = mount / "ketamine-grade-test"
    parent.mkdir(exist_ok=True)
    try:
        kernel = V2KernelCgroup(parent, f"kernel-{os.getpid()}", 1024**3, 64)
        process = subprocess.Popen([*kernel.enter_command(), "sh", "-c", "sleep 300 & sleep 300 & wait"], start_new_session=True)
        for _ in range(100):
            members = (kernel.folder / "cgroup.procs").read_text().split()
            if len(members) >= 3:
                break
            time.sleep(0.05)
        assert str(process.pid) in members and len(members) >= 3, "the shell and both of its children are in the kernel's cgroup"
        line = [entry for entry in Path(f"/proc/{process.pid}/cgroup").read_text().splitlines() if entry.startswith("0::")][0]
        assert line.endswith(f"/ketamine-grade-test/kernel-{os.getpid()}")
        kernel.kill_and_remove()
        assert process.wait(timeout=10) != 0
        assert not kernel.folder.exists()
        for pid in members:
            assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
    finally:
        for leftover in parent.glob("kernel-*"):
            leftover.rmdir()
        parent.rmdir()


@pytest.mark.slow
def test_a_graded_kernel_enters_its_v2_cgroup_with_the_configured_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: bool) -> None:
    """A whole grading with a simulated cgroup v2 parent: the cage makes the kernel's cgroup, writes its limits and enters it."""
    if not sandbox:
        pytest.skip("bubblewrap is not installed here")
    from grading_helpers import make_course, solutions, submission, submit
    from ketamine_course.grading.run import grade_class

    parent = tmp_path / "simulated-cgroup" / "ketamine-grade"
    parent.mkdir(parents=True)
    (parent / "cgroup.subtree_control").write_text("memory pids\n")
    monkeypatch.setattr(cgroups, "current_plan", lambda: CgroupPlan("v2", "simulated", parent=parent))
    quiz = "quiz01_history"
    course = make_course(tmp_path, quiz)
    submit(course, quiz, "ada", submission(quiz, solutions(quiz)))
    (result,) = grade_class(course, quiz, progress=None)
    assert result.error is None and result.score == result.max_score
    (kernel,) = parent.glob("ketamine-kernel-*")
    assert (kernel / "memory.max").read_text() == str(2 * 1024**3)
    assert (kernel / "pids.max").read_text() == "64"
    assert (kernel / "cgroup.procs").read_text().strip().isdigit()
    assert (kernel / "cgroup.kill").read_text() == "1", "the kernel's cgroup was emptied when its notebook was done"
