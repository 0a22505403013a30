"""A kernel that fails to start is retried with backoff; a notebook's own error is not."""

import pytest
from papermill.exceptions import PapermillExecutionError

from paperlib.run import kernels
from paperlib.run.grid import run_grid
from paperlib.run.kernels import _IPCKernelManager, _kernel_never_started
from paperlib.run.profiles import load_grid
from paperlib.run.results import load_results


@pytest.mark.slow
def test_a_kernel_that_fails_to_start_once_is_retried_and_the_cell_runs_once(
    smoke_env, monkeypatch, capsys
):
    starts = []
    real_start = _IPCKernelManager.start_kernel

    async def start_failing_once(self, **kwargs):
        starts.append(len(starts))
        if len(starts) == 1:
            raise RuntimeError("Kernel didn't respond in 60 seconds")
        return await real_start(self, **kwargs)

    monkeypatch.setattr(_IPCKernelManager, "start_kernel", start_failing_once)
    monkeypatch.setattr(kernels, "KERNEL_RETRY_BACKOFF_S", 0.01)
    cell = load_grid("density", "smoke")[0].cell_id
    outcomes = run_grid("smoke", "density", only=[cell], workers=1, progress=False)
    assert [o.status for o in outcomes] == ["ran"]
    assert len(starts) == 2  # the failed start, then one that ran the notebook
    assert "failed to start" in capsys.readouterr().err  # the retry is logged
    results = load_results("smoke", "density")
    assert [r.cell for r in results] == [cell]


def test_only_a_kernel_that_never_started_counts_as_a_start_failure(tmp_path):
    missing = tmp_path / "never-written.ipynb"
    assert _kernel_never_started(RuntimeError("Kernel didn't respond in 60 seconds"), missing)
    assert _kernel_never_started(TimeoutError("start-up"), missing)
    # an error of the notebook's own code, or any other error, is never retried
    error = PapermillExecutionError(1, 1, "ValueError: bad", "ValueError", "bad", [])
    assert not _kernel_never_started(error, missing)
    assert not _kernel_never_started(ValueError("bad"), missing)


def test_a_start_failure_after_a_cell_ran_is_not_retried(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00"}
    notebook.cells.append(cell)
    path = tmp_path / "partial.ipynb"
    nbformat.write(notebook, path)
    assert not _kernel_never_started(RuntimeError("Kernel didn't respond in 60 seconds"), path)
