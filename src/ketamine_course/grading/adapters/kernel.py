"""jupyter_client's kernel manager, launching each kernel in its cage.

:class:`CagedKernelManager` overrides jupyter_client's private
``_async_launch_kernel`` (to pass bubblewrap its descriptors and a clean
environment, and to keep the kernel's last error lines) and reads
``provisioner.process`` (the launched process, for the cage's watchdog).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from ..sandbox import ErrorTail, KernelCage, launcher_environment, sandbox_argv

__all__ = ["CagedKernelManager"]


class CagedKernelManager(AsyncKernelManager):
    """Launches the kernel in its cage's private folder (inside bubblewrap when sandboxed), keeping its last error
    lines."""

    def __init__(self, cage: KernelCage, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cage = cage
        self.error_tail: ErrorTail | None = None
        if cage.sandboxed:
            self.transport = "ipc"
            self.ip = str(cage.run / "kernel")
            self.connection_file = str(cage.run / "connection.json")
            if self.kernel_spec is not None:
                # signals would reach bwrap, not the kernel: interrupt through the control channel
                self.kernel_spec.interrupt_mode = "message"

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.cage.sandboxed:
            self.cage.own(Path(self.connection_file))

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kwargs: Any) -> None:
        # the kernel's start-up chatter is not shown, but its last lines are kept: a kernel that dies says why
        self.error_tail = ErrorTail()
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs["stderr"] = self.error_tail.write_end
        if self.cage.sandboxed:
            # bubblewrap itself starts with nothing of the grader's environment (its reaper's /proc/1/environ is
            # readable in the cage); it reads its arguments and the system-call filter from these descriptors
            kwargs["env"] = launcher_environment()
            kwargs["pass_fds"] = self.cage.inherited_fds()
        try:
            await super()._async_launch_kernel(kernel_cmd, **kwargs)
        finally:
            self.error_tail.started()
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            self.cage.watch(process.pid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return sandbox_argv(command, self.cage) if self.cage.sandboxed else command
