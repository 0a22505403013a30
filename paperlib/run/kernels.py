"""Notebook execution under papermill: kernels that talk over Unix sockets named after
the process that owns them (so a killed grid's can be cleaned up), a start retried when
the kernel never came up, and executed notebooks that record repository-relative paths."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum

from paperlib.run.store import (
    NOTEBOOKS_DIR,
    REPO_ROOT,
    process_alive,
)

KERNEL = "python3"
KERNEL_SOCKET_PREFIX = "paperlib-kernel-"


_sockets_of_this_process: list[str] = []  # kernel socket prefixes created here


def _remove_own_sockets() -> None:
    """Delete the socket files of the kernels this process started (they are shut down
    by now, or being shut down after an interrupt)."""
    while _sockets_of_this_process:
        prefix = Path(_sockets_of_this_process.pop())
        for path in prefix.parent.glob(f"{prefix.name}-*"):
            path.unlink(missing_ok=True)


def remove_orphan_sockets() -> int:
    """Delete the kernel sockets (``paperlib-kernel-<pid>-...``) whose owning process is
    gone, as after a killed grid; return how many."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{KERNEL_SOCKET_PREFIX}*"):
        owner = path.name[len(KERNEL_SOCKET_PREFIX) :].split("-")[0]
        if owner.isdigit() and process_alive(int(owner)):
            continue
        path.unlink(missing_ok=True)  # a dead owner's, or an older unnamed one
        removed += 1
    return removed


class _IPCKernelManager(AsyncKernelManager):
    """Talks to the kernel over Unix sockets in the temp folder instead of localhost TCP."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Named after the process that owns the kernel, so that the sockets of one that
        # was killed can be found and removed (``remove_orphan_sockets``).
        name = f"{KERNEL_SOCKET_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.ip = str(Path(tempfile.gettempdir()) / name)
        _sockets_of_this_process.append(self.ip)

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts a kernel before every shutdown. Ours are idle by then
        # (a cell that overran was already interrupted by papermill), and the SIGINT only
        # makes ipykernel log a spurious "KeyboardInterrupt caught in kernel" error.
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


# A kernel can fail to start under load: ZMQ's "address already in use" (papermill
# #511), or no answer within the start-up timeout (#776). Such a start is retried with
# backoff; an error raised by the notebook's own code never is.
KERNEL_START_ATTEMPTS = 3
KERNEL_RETRY_BACKOFF_S = 2.0  # doubled after each failed start


def execute_notebook(
    name: str, output: Path, parameters: dict[str, Any], recorded_as: Path | None = None
) -> None:
    """Run ``notebooks/<name>.ipynb`` with papermill, writing the executed copy to ``output``.

    papermill records where the notebook came from and went; the executed copy keeps
    those paths relative to the repository (``recorded_as``, default ``output``), so
    committed runs name no folder of the machine that ran them.
    """
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            pm.execute_notebook(
                NOTEBOOKS_DIR / f"{name}.ipynb",
                output,
                parameters=parameters,
                kernel_name=KERNEL,
                progress_bar=False,
                cwd=str(NOTEBOOKS_DIR),
                kernel_manager_class=_IPCKernelManager,
            )
            break
        except Exception as err:
            if attempt == KERNEL_START_ATTEMPTS or not _kernel_never_started(err, Path(output)):
                raise
            wait = KERNEL_RETRY_BACKOFF_S * 2 ** (attempt - 1)
            print(
                f"kernel for {name} ({Path(recorded_as or output).stem}) failed to start: "
                f"{type(err).__name__}: {err}; retry {attempt} of {KERNEL_START_ATTEMPTS - 1} "
                f"in {wait:g} s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(wait)
        finally:
            _remove_own_sockets()
            if Path(output).exists():
                relative_papermill_paths(Path(output), f"notebooks/{name}.ipynb", recorded_as)


def _kernel_never_started(err: Exception, output: Path) -> bool:
    """Whether ``err`` is a kernel that failed to start, before any code cell ran (so a
    retry cannot run anything twice)."""
    from nbclient.exceptions import DeadKernelError
    from zmq.error import ZMQError

    starting = isinstance(err, ZMQError | DeadKernelError | TimeoutError) or (
        isinstance(err, RuntimeError) and "didn't respond" in str(err)
    )
    if not starting:
        return False
    if not output.exists():
        return True
    nb = nbformat.read(output, as_version=4)
    return not any(c.get("metadata", {}).get("papermill", {}).get("start_time") for c in nb.cells)


def relative_papermill_paths(notebook: Path, source: str, recorded_as: Path | None) -> None:
    """Rewrite papermill's ``input_path`` and ``output_path`` metadata of ``notebook``."""
    nb = nbformat.read(notebook, as_version=4)
    meta = nb.metadata.get("papermill")
    if meta is None:
        return
    target = Path(recorded_as or notebook).resolve()
    meta["input_path"] = source
    meta["output_path"] = (
        str(target.relative_to(REPO_ROOT)) if target.is_relative_to(REPO_ROOT) else target.name
    )
    nbformat.write(nb, notebook)
