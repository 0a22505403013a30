"""One grid cell: claimed (so two grids never run it twice), executed, and landed
atomically as a result and an executed notebook, or recorded as a failure that names
the error and where its traceback is."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperlib.run.checkpoints import checkpoint_path
from paperlib.run.kernels import execute_notebook
from paperlib.run.results import explains_attacked_model, is_done, read_result
from paperlib.run.store import (
    claim,
    release,
    result_path,
    run_path,
    write_json,
)


@dataclass(frozen=True)
class CellOutcome:
    cell: str
    # "ran", "skipped", "failed", "held" (another grid is running it), "interrupted" or
    # "not started" (the grid was drained first)
    status: str
    notebook: Path
    error: str | None = None


def run_cell(
    profile: str, experiment: str, cell_id: str, parameters: dict[str, Any], expected_hash: str
) -> CellOutcome:
    """Execute one cell's notebook with papermill; the executed notebook lands atomically.

    The cell is claimed first (``store.claim``): a cell that another grid is running is
    left to it ("held"), and one that it finished meanwhile is skipped.
    """
    final = run_path(profile, experiment, cell_id)
    result = result_path(profile, experiment, cell_id)
    if not claim(result):
        return CellOutcome(cell_id, "held", final, "another grid is running this cell")
    try:
        if nothing_left_to_run(profile, experiment, cell_id, expected_hash):
            return CellOutcome(cell_id, "skipped", final)
        return _execute_claimed(experiment, cell_id, parameters, expected_hash, final, result)
    finally:
        release(result)


def nothing_left_to_run(profile: str, experiment: str, cell_id: str, expected_hash: str) -> bool:
    """Whether a cell has nothing left to run: its result exists with the expected hash
    and, in experiment 3, explains the model experiment 2 attacked or cannot be made to
    (``_pairs_again``)."""
    if not is_done(result_path(profile, experiment, cell_id), expected_hash):
        return False
    return not (experiment == "attribution" and _pairs_again(profile, cell_id))


def _pairs_again(profile_name: str, cell_id: str) -> bool:
    """Whether an attribution result that explains another model than its adversarial
    cell attacked should be redone: where the attacked model's checkpoint is here and
    newer than that result, a rerun reuses it. Without it a rerun would train again, and
    could differ again; the attribution page names such cells instead."""
    attribution = read_result(result_path(profile_name, "attribution", cell_id))
    adversarial = read_result(result_path(profile_name, "adversarial", cell_id))
    if attribution is None or adversarial is None or adversarial.model_key is None:
        return False
    if explains_attacked_model(attribution, adversarial):
        return False
    checkpoint = checkpoint_path(profile_name, adversarial.model_key)
    made = dt.datetime.fromisoformat(attribution.provenance.started_at).timestamp()
    return checkpoint.exists() and checkpoint.stat().st_mtime > made


def _execute_claimed(experiment, cell_id, parameters, expected_hash, final, result):
    partial = final.with_name(f".{final.stem}.partial.tmp.ipynb")
    failed = final.with_suffix(".failed.ipynb")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        execute_notebook(experiment, partial, parameters, recorded_as=final)
        if not is_done(result, expected_hash):
            raise RuntimeError("the notebook finished without writing a matching result")
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)  # stopped, not failed: a rerun runs it again
        raise
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the grid goes on
        if getattr(err, "ename", None) == "KeyboardInterrupt":  # Ctrl-C reached the kernel
            partial.unlink(missing_ok=True)
            raise KeyboardInterrupt from err
        return _record_failure(cell_id, partial, failed, err)
    os.replace(partial, final)
    failed.unlink(missing_ok=True)
    failed.with_suffix(".json").unlink(missing_ok=True)
    return CellOutcome(cell_id, "ran", final)


def _record_failure(
    cell_id: str, partial: Path | None, failed: Path, err: Exception, traceback: Path | None = None
) -> CellOutcome:
    """Write the failure record; ``traceback`` is where to read the error (default: ``failed``)."""
    if partial is not None and partial.exists():
        os.replace(partial, failed)
    traceback = traceback or failed
    # A notebook's own exception is the useful part of papermill's error.
    name, text = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    lines = str(text).strip().splitlines() or [""]
    message = f"{name}: {lines[0]}"[:500]
    try:
        write_json(
            failed.with_suffix(".json"),
            {"cell": cell_id, "error": message, "traceback": str(traceback)},
        )
    except OSError as err:  # a full disk takes the record too: say so, go on
        failed.unlink(missing_ok=True)  # the notebook papermill could not finish writing
        message = f"{message}; and no failure record: {err.strerror}"
    return CellOutcome(cell_id, "failed", traceback, message)


def summarize(outcomes: list[CellOutcome]) -> str:
    statuses = ("ran", "skipped", "failed", "held", "interrupted", "not started")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    lines = [", ".join(f"{n} {s}" for s, n in counts.items())]
    lines += [
        f"FAILED {o.cell}: {o.error}\n  traceback: {o.notebook}"
        for o in outcomes
        if o.status == "failed"
    ]
    return "\n".join(lines)
