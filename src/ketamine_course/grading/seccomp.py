"""The system calls a graded kernel may make: an allow-list, compiled with libseccomp and loaded by bubblewrap.

A Python kernel with the course's packages (NumPy, SciPy, pandas,
matplotlib, ZeroMQ) needs the ordinary calls of a process: files, memory,
threads, signals, time, local sockets. It never needs to make namespaces,
mount file systems, trace or read other processes, load kernel code or
programs (modules, BPF), use the kernel's keyrings, watch the file system
through fanotify, or submit work to io_uring. The allow-list below is the
ordinary set (it follows the default profile container runtimes use for
untrusted programs, without the calls they allow only to privileged
containers, and without ``ptrace``, ``process_vm_*``, ``io_uring_*``,
``name_to_handle_at``, ``fanotify_mark``, ``memfd_secret``); everything else
fails with ``EPERM``. ``clone`` is allowed only without namespace flags,
``clone3`` fails with ``ENOSYS`` (so the C library falls back to ``clone``,
whose flags the filter can read), ``socket`` is refused for ``AF_VSOCK``,
``personality`` only for the harmless values, and calls of another
architecture's ABI (32-bit x86 on x86-64) kill the process.

The filter is built with libseccomp (``libseccomp.so.2``, part of every
Debian and Ubuntu system: systemd depends on it) through :mod:`ctypes`, and
written as a BPF program to a file bubblewrap reads (``--seccomp FD``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from pathlib import Path

__all__ = ["ALLOWED", "SeccompUnavailable", "write_filter", "seccomp_problem"]

ALLOWED = frozenset("""
accept accept4 access alarm arch_prctl bind brk capget capset chdir chmod chown clock_getres clock_gettime
clock_nanosleep close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fallocate fchdir fchmod fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr
fsetxattr fstat fstatfs fsync ftruncate futex futex_waitv futimesat getcpu getcwd getdents getdents64 getegid geteuid
getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid
getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
ioprio_get ioprio_set io_setup io_submit kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat madvise membarrier memfd_create
mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64
preadv preadv2 prlimit64 pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid setgroups setitimer setpgid setpriority setregid
setresgid setresuid setreuid setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 socketpair splice stat statfs statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask uname unlink unlinkat utime
utimensat utimes vfork vmsplice wait4 waitid write writev
""".split())
"""The system calls a graded kernel may make without conditions (names as libseccomp knows them)."""

NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET: ``clone``
with any is refused."""
AF_VSOCK = 40
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
"""PER_LINUX, its UNAME26 and ADDR_NO_RANDOMIZE variants (as ``setarch -R`` uses), and the query
``personality(0xffffffff)``."""

_SCMP_ACT_KILL_PROCESS = 0x80000000
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_CMP_NE, _SCMP_CMP_EQ, _SCMP_CMP_MASKED_EQ = 1, 4, 7


def _errno_action(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)
    ]


class SeccompUnavailable(RuntimeError):
    """libseccomp cannot be loaded or the filter cannot be built; the message says what to install."""


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        library = ctypes.CDLL(name, use_errno=True)
    except OSError as error:
        raise SeccompUnavailable(
            f"cannot load libseccomp ({error}); install it (Debian and Ubuntu: apt-get install libseccomp2)"
        ) from None
    library.seccomp_init.restype = ctypes.c_void_p
    library.seccomp_init.argtypes = [ctypes.c_uint32]
    library.seccomp_release.argtypes = [ctypes.c_void_p]
    library.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    library.seccomp_syscall_resolve_name.restype = ctypes.c_int
    library.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]
    library.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    library.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return library


def _rule(library: ctypes.CDLL, context: int, action: int, name: str, *conditions: tuple[int, int, int, int]) -> None:
    number = library.seccomp_syscall_resolve_name(name.encode())
    if number < 0:  # not a call of this architecture (or too new for this libseccomp): nothing to allow
        return
    array = (_ArgCmp * max(1, len(conditions)))(*[_ArgCmp(*c) for c in conditions])
    result = library.seccomp_rule_add_array(context, action, number, len(conditions), array)
    if result < 0:
        raise SeccompUnavailable(f"libseccomp refused the rule for {name} ({os.strerror(-result)})")


def write_filter(path: Path) -> Path:
    """Write the compiled filter (a BPF program for this machine's architecture) to ``path``, readable only by the
    grader."""
    library = _library()
    context = library.seccomp_init(_errno_action(errno.EPERM))
    if not context:
        raise SeccompUnavailable("libseccomp could not start a filter")
    try:
        library.seccomp_attr_set(context, _SCMP_FLTATR_ACT_BADARCH, _SCMP_ACT_KILL_PROCESS)
        for name in sorted(ALLOWED):
            _rule(library, context, _SCMP_ACT_ALLOW, name)
        _rule(library, context, _SCMP_ACT_ALLOW, "clone", (0, _SCMP_CMP_MASKED_EQ, NAMESPACE_FLAGS, 0))
        _rule(library, context, _errno_action(errno.ENOSYS), "clone3")
        _rule(library, context, _SCMP_ACT_ALLOW, "socket", (0, _SCMP_CMP_NE, AF_VSOCK, 0))
        for value in PERSONALITIES:
            _rule(library, context, _SCMP_ACT_ALLOW, "personality", (0, _SCMP_CMP_EQ, value, 0))
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            result = library.seccomp_export_bpf(context, descriptor)
        finally:
            os.close(descriptor)
        if result < 0:
            raise SeccompUnavailable(f"libseccomp could not write the filter ({os.strerror(-result)})")
    finally:
        library.seccomp_release(context)
    return path


@functools.lru_cache(maxsize=1)
def seccomp_problem() -> str | None:
    """Why the filter cannot be built here, or None when it can (tried once, in a scratch file)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="ketamine-seccomp-") as scratch:
            written = write_filter(Path(scratch) / "filter.bpf")
            if written.stat().st_size == 0:
                return "libseccomp wrote an empty filter"
    except (SeccompUnavailable, OSError) as problem:
        return str(problem)
    return None
