"""Run an experiment's grid: one papermill execution of its notebook per cell.

A cell whose result exists with a matching config hash is skipped, so a rerun after a
crash resumes where it stopped. A failing cell is recorded and the others still run.
Cells run here (``executor="local"``, in parallel workers if asked) or as a Slurm job
array through submitit (``executor="slurm"``); both paths run the same ``run_cell``.
"""

from __future__ import annotations

import shutil
from typing import Any

from tqdm import tqdm

from paperlib.core.registry import EXECUTORS
from paperlib.core.settings import ConfigError, Profile, as_dict
from paperlib.run.cells import CellOutcome, nothing_left_to_run
from paperlib.run.kernels import remove_orphan_sockets
from paperlib.run.profiles import cell_hash, load_grid, load_profile
from paperlib.run.slurm import SlurmOptions, execute_on_slurm
from paperlib.run.splits import data_identity, load_profile_data
from paperlib.run.store import (
    live_claims,
    output_root,
    remove_dead_claims,
    remove_stale_temporaries,
    run_path,
)
from paperlib.run.workers import execute_locally, visible_gpus, workers_that_fit


def run_grid(
    profile_name: str,
    experiment: str,
    *,
    data_path: str | None = None,
    extra_parameters: dict[str, dict[str, Any]] | None = None,
    only: list[str] | None = None,
    workers: int | None = None,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    progress: bool = True,
    draining=None,
) -> list[CellOutcome]:
    """Execute every unfinished cell of ``experiment`` in profile ``profile_name``.

    ``extra_parameters`` maps a cell id to more papermill parameters for that cell only
    (for debugging one cell, or injecting a fault in a test). ``only`` restricts the
    grid to the cells it names. ``workers`` cells run at
    once; locally the default is the profile's ``grid.workers_per_gpu`` on each visible
    GPU, or its ``grid.workers`` on a machine without one, and on Slurm it is every cell
    at once (as the cluster allows). Once ``draining`` (``workers.drained_by_sigusr1``)
    is set, no local cell starts; those are "not started", and a rerun resumes with them.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of {list(EXECUTORS)}")
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError(
            "executor 'slurm' submits with sbatch, which is not on PATH: run the grid on a "
            "Slurm login node, or use --executor local"
        )
    profile = load_profile(profile_name)  # both raise ConfigError before any compute
    cells = _selected_cells(profile, experiment, only)
    _clear_leftovers(profile.name, experiment)
    outcomes, jobs = {}, []
    for cell in cells:
        expected = cell_hash(profile, experiment, cell, data_identity(profile, data_path))
        if nothing_left_to_run(profile.name, experiment, cell.cell_id, expected):
            path = run_path(profile.name, experiment, cell.cell_id)
            outcomes[cell.cell_id] = CellOutcome(cell.cell_id, "skipped", path)
            continue
        parameters = {"profile": profile.name, **as_dict(cell)}
        if data_path is not None:
            parameters["data_path"] = str(data_path)
        parameters |= (extra_parameters or {}).get(cell.cell_id, {})
        jobs.append((profile.name, experiment, cell.cell_id, parameters, expected))
    if executor == "local":
        gpus, chosen = visible_gpus(), workers is not None
        workers = workers or profile.grid.workers_here(len(gpus))
        if not gpus:
            running = {job[2] for job in jobs}
            to_run = [cell for cell in cells if cell.cell_id in running]
            workers = workers_that_fit(profile, experiment, to_run, workers, chosen)
    if executor == "local" and len(jobs) > 1:
        # Decode the data (or find it cached) once, here: parallel cells would each
        # build the cache at once, and a missing copy fails before any cell starts.
        load_profile_data(profile, data_path)
    bar = tqdm(
        total=len(cells),
        initial=len(outcomes),
        unit="cell",
        disable=not progress,
        desc=f"{experiment} grid ({profile.name})",
    )
    remove_orphan_sockets()
    if executor == "slurm":
        logs = output_root() / "results" / profile.name / experiment / "slurm"
        finished = execute_on_slurm(jobs, workers, slurm or SlurmOptions(), logs)
    else:
        finished = execute_locally(jobs, workers, draining=draining)
    try:
        for outcome in finished:
            outcomes[outcome.cell] = outcome
            bar.set_postfix(cell=outcome.cell)
            bar.update()
    except KeyboardInterrupt:
        # Ctrl-C: the running cells were stopped (their kernels shut down, their partial
        # notebooks and claims removed); what finished is kept, and a rerun resumes.
        finished.close()
        for cell in cells:
            if cell.cell_id not in outcomes:
                path = run_path(profile.name, experiment, cell.cell_id)
                outcomes[cell.cell_id] = CellOutcome(cell.cell_id, "interrupted", path)
    finally:
        bar.close()
        remove_orphan_sockets()
    for cell in cells:  # left unstarted by a drain: a rerun resumes with them
        if cell.cell_id not in outcomes:
            path = run_path(profile.name, experiment, cell.cell_id)
            outcomes[cell.cell_id] = CellOutcome(cell.cell_id, "not started", path)
    return [outcomes[cell.cell_id] for cell in cells]


def _selected_cells(profile: Profile, experiment: str, only: list[str] | None) -> list:
    """The experiment's grid, or the cells of it that ``only`` names (each must be one)."""
    cells = load_grid(experiment, profile.name)
    if only is None:
        return cells
    unknown = sorted(set(only) - {c.cell_id for c in cells})
    if unknown:
        raise ConfigError(
            f"no cell {', '.join(unknown)} in the {experiment} grid of profile "
            f"{profile.name!r}; its cells are {', '.join(c.cell_id for c in cells)}"
        )
    return [c for c in cells if c.cell_id in only]


def _clear_leftovers(profile_name: str, experiment: str) -> None:
    """Remove what a killed grid left: its claims, and its temporaries, which are stale
    only when no other grid is at work on this experiment."""
    results = output_root() / "results" / profile_name / experiment
    remove_dead_claims(results)
    if not live_claims(results):
        for kind in ("results", "runs"):
            remove_stale_temporaries(output_root() / kind / profile_name / experiment)
