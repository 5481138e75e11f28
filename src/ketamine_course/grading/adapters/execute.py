"""nbgrader's Execute step, caged: one kernel per notebook, limits for the whole notebook, nothing left running.

:class:`BoundedExecute` replaces nbgrader's ``Execute`` in the autograde
pipeline (``nbgrader autograde``, ``ketamine-grade class`` and self-grading all
use it). Every limit is one configurable trait here; the sandbox's defaults
come from :class:`~ketamine_course.grading.sandbox.SandboxLimits` and the
submission-size defaults from :class:`~ketamine_course.grading.intake.Limits`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nbformat import NotebookNode, v4
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer

from ...quiz.wire import MAX_RECORD_CHARS, RECORD_MARKER
from ..hidden import StudentError, judge_cell, verdicts_of
from ..intake import Limits
from ..sandbox import KernelCage, SandboxLimits, kernel_start_failure, require_sandbox
from .kernel import CagedKernelManager
from .preprocessors import hidden_regions, verdict

__all__ = ["BoundedExecute"]

_DEFAULTS = SandboxLimits()


def _not_run(reason: str) -> NotebookNode:
    text = f"Not run: {reason}."
    return v4.new_output("error", ename="NotRun", evalue=text, traceback=[text])


class BoundedExecute(Execute):
    """nbgrader's Execute, in a cage, with a time limit for the whole notebook and a cap on output.

    The kernel works in a private folder holding copies of the student's own
    files, never in nbgrader's autograded folder. A cell that would start after
    the notebook's time is up is not run; it gets an error output saying so
    (no credit). If the kernel dies (``os._exit``, ``exit()``) or the cage
    stops it (a limit), the remaining cells are marked the same way instead of
    aborting the grading of the submission. When the notebook is done the
    kernel and every process it started are killed and its folder removed.
    """

    sandbox = Bool(True, help="run the kernel in the sandbox; False only for code you trust").tag(config=True)
    notebook_timeout = Float(180.0, help="seconds of wall-clock time for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output kept per notebook; the rest is dropped").tag(config=True)
    cpu_seconds = Integer(_DEFAULTS.cpu_seconds, help="CPU seconds of each process of the kernel").tag(config=True)
    memory_bytes = Integer(
        _DEFAULTS.memory_bytes, help="resident memory of the whole kernel, in bytes"
    ).tag(config=True)
    processes = Integer(_DEFAULTS.processes, help="processes and threads of the whole kernel").tag(config=True)
    disk_bytes = Integer(
        _DEFAULTS.disk_bytes, help="bytes the kernel may write (working folder and /tmp together)"
    ).tag(config=True)
    file_size_bytes = Integer(
        _DEFAULTS.file_size_bytes, help="the largest file the kernel may write, in bytes"
    ).tag(config=True)
    open_files = Integer(_DEFAULTS.open_files, help="open files of each process").tag(config=True)
    max_notebook_bytes = Integer(
        Limits.max_notebook_bytes, help="a submitted notebook above this size is refused"
    ).tag(config=True)
    max_submission_bytes = Integer(
        Limits.max_submission_bytes, help="a submission folder above this size is refused"
    ).tag(config=True)
    max_submission_files = Integer(
        Limits.max_submission_files, help="a submission folder with more files is refused"
    ).tag(config=True)

    def limits(self) -> SandboxLimits:
        """The configured limits of one kernel."""
        return SandboxLimits(
            self.cpu_seconds, self.memory_bytes, self.processes, self.disk_bytes, self.file_size_bytes, self.open_files
        )

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._deadline = time.monotonic() + self.notebook_timeout
        self._output_bytes = 0
        self._truncated = False
        self._record_bytes = 0
        self._errors_past_cap = 0
        self._stopped: str | None = None
        self._cell_timeout: int | None = self.timeout  # type: ignore[has-type]
        if self.sandbox:
            require_sandbox()
        resources = resources if resources is not None else {}
        metadata = resources.setdefault("metadata", {})
        folder = metadata.get("path") or "."
        self._regions = (
            hidden_regions(resources) if "nbgrader" in resources and "db_url" in resources["nbgrader"] else {}
        )
        self._review: list[str] = resources.setdefault("ketamine_course", {}).setdefault("review", [])
        self._cage = KernelCage(self.limits(), sandboxed=self.sandbox)
        try:
            self._cage.populate(Path(folder))
            metadata["path"] = str(self._cage.workdir)
            if km is None:
                km = CagedKernelManager(
                    cage=self._cage,
                    kernel_name=self.kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3"),
                )
            self._cells_started = False
            try:
                return super().preprocess(nb, resources, km=km)
            except (RuntimeError, TimeoutError) as error:
                tail = getattr(km, "error_tail", None)
                if self._cells_started or tail is None:
                    raise
                raise kernel_start_failure(error, tail.text()) from error
        finally:
            self.timeout = self._cell_timeout
            metadata["path"] = folder
            self._end_kernel(km)
            self._cage.close()

    def _end_kernel(self, km: Any) -> None:
        """Shut down a kernel this step started (nbclient leaves a kernel manager it was given running)."""
        if km is None:
            return
        from jupyter_core.utils import run_sync

        try:
            if getattr(self, "kc", None) is not None:
                self.kc.stop_channels()
            run_sync(km.shutdown_kernel)(now=True)
        except Exception as error:  # the cage kills whatever is left
            self.log.debug("Kernel shutdown: %s", error)
        try:
            run_sync(km.cleanup_resources)()
        except Exception:
            pass

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        self._cells_started = True
        if cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if self._stopped is None and remaining <= 0:
            self._stopped = f"the notebook's time limit ({self.notebook_timeout:g} s) was reached"
        if self._stopped is None and self._cage.stop_reason():
            self._stopped = f"the grader stopped the kernel: {self._cage.stop_reason()}"
        if self._stopped:
            cell.outputs = [_not_run(self._stopped)]
            return cell, resources
        self.timeout = max(1, int(remaining if self._cell_timeout is None else min(self._cell_timeout, remaining)))
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and grade_id in self._regions:
                _, visible, hidden = self._regions[grade_id]
                if judge_cell(cell, grade_id, visible, hidden, lambda code: self._run_in_kernel(code, index)):
                    self._review.append(
                        f"{grade_id}: the student's code wrote to stderr during a passing hidden test "
                        "(nbgrader scores the cell 0)"
                    )
                verdicts_of(resources)[grade_id] = verdict(cell)
            return cell, resources
        except Exception as error:  # the kernel died or stopped answering
            if type(error).__name__ not in (
                "DeadKernelError", "UnresponsiveKernelError", "RuntimeError", "CellTimeoutError", "TimeoutError"
            ):
                raise
            limit = self._cage.stop_reason()
            self._stopped = (
                f"the grader stopped the kernel: {limit}" if limit else f"the kernel stopped ({type(error).__name__})"
            )
            cell.outputs = list(cell.get("outputs", [])) + [_not_run(self._stopped)]
            return cell, resources

    def _run_in_kernel(self, code: str, index: int) -> list[NotebookNode]:
        """Run one line in the kernel for the hidden-test judge (a call of the student's function); its outputs.

        The call counts against the notebook's time limit like any cell: once
        the time is up no call is made, and a call runs for what is left.
        """
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or self._stopped:
            self._stopped = self._stopped or f"the notebook's time limit ({self.notebook_timeout:g} s) was reached"
            raise StudentError(f"not run: {self._stopped}")
        call = v4.new_code_cell(code)
        graded = self.nb.cells[index]
        self.timeout = max(1, int(remaining if self._cell_timeout is None else min(self._cell_timeout, remaining)))
        try:
            self.execute_cell(call, index, store_history=False)
        except Exception as error:  # the call timed out or the kernel died: the judge sees a failed call
            if type(error).__name__ not in (
                "DeadKernelError", "UnresponsiveKernelError", "CellTimeoutError", "TimeoutError", "RuntimeError"
            ):
                raise
            limit = self._cage.stop_reason()
            self._stopped = (
                f"the grader stopped the kernel: {limit}" if limit else f"the kernel stopped ({type(error).__name__})"
            )
            raise StudentError(f"not run: {self._stopped}") from None
        finally:
            self.nb.cells[index] = graded  # nbclient puts the cell it ran at its index
        outputs = list(call.get("outputs", []))
        if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in outputs):
            raise StudentError("not run: the call ran past the time limit (the grader interrupted it)")
        return outputs

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        content = msg.get("content", {})
        size = sum(
            len(str(content.get(key, ""))) for key in ("text", "data", "metadata", "evalue", "traceback", "ename")
        )
        self._output_bytes += size
        if msg.get("msg_type") == "error" and size > 10_000:  # an error always shows, but only its gist
            traceback = [str(line)[:1000] for line in list(content.get("traceback", []))[-5:]]
            msg = {**msg, "content": {
                **content, "ename": str(content.get("ename", ""))[:200],
                "evalue": str(content.get("evalue", ""))[:2000], "traceback": traceback,
            }}
        if self._output_bytes > self.max_output_bytes and msg.get("msg_type") == "error":
            self._errors_past_cap = getattr(self, "_errors_past_cap", 0) + 1
            if self._errors_past_cap > 20:  # a flood of errors: one per cell is enough to score it 0
                return (
                    None if any(o.get("output_type") == "error" for o in outs)
                    else super().output(outs, msg, display_id, cell_index)
                )
        if self._output_bytes > self.max_output_bytes and msg.get("msg_type") != "error":
            if not self._truncated:
                self._truncated = True
                outs.append(v4.new_output(
                    "stream", name="stdout",
                    text=f"\n[output beyond {self.max_output_bytes} bytes dropped by the grader]\n",
                ))
            records = self._record_lines(content.get("text")) if msg.get("msg_type") == "stream" else ""
            if not records:
                return None
            msg = {**msg, "content": {**content, "text": records}}
        return super().output(outs, msg, display_id, cell_index)

    def _record_lines(self, text: object) -> str:
        """The answer-record lines in a stream beyond the output cap: kept (within their own budget) so later questions
        can be judged."""
        if not isinstance(text, str) or RECORD_MARKER not in text:
            return ""
        lines = [
            line for line in text.splitlines(keepends=True)
            if line.startswith(RECORD_MARKER) and len(line) <= MAX_RECORD_CHARS
        ]
        kept = []
        for line in lines:
            self._record_bytes = getattr(self, "_record_bytes", 0) + len(line)
            if self._record_bytes <= self.max_output_bytes:
                kept.append(line)
        return "".join(kept)
