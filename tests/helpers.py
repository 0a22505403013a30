"""Helpers the test files share: results built with the project's own writer
(``results.cell_result``), so that a fixture can never drift from the schema, and a free
port for the servers the tests start (Jupyter, Slurm)."""

from __future__ import annotations

import socket
from typing import Any

from paperlib.core.settings import as_dict, make_cell
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.results import METRICS, cell_result, write_result
from paperlib.run.splits import data_identity

PROVENANCE = {
    "commit": "0123456789abcdef",
    "dirty": False,
    "device": "CPU (x86_64, 2 threads)",
    "threads": 2,
    "seed": 0,
    "data_source": "synthetic (no CIFAR-10 copy found)",
    "data_note": "",
    "started_at": "2024-01-01T00:00:00+00:00",
    "wall_seconds": 12.5,
}
# The parts a test leaves out: empty, of the type the notebooks write.
EMPTY_PARTS = {
    "density": {"settings": {}, "test_correct": "", "history": []},
    "adversarial": {
        "model_key": "0" * 16,
        "n_params": 0,
        "correct": {},
        "per_image": {},
        "history": [],
        "finetune_history": {},
    },
    "attribution": {"model_key": "0" * 16, "checkpoint_reused": True, "per_image": {}},
    "deepfool_check": {},
}


def make_result(
    experiment: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    provenance: dict[str, Any] | None = None,
    profile: str = "smoke",
    data: str = "synthetic",
    **parts: Any,
) -> dict:
    """A result as a notebook writes it and the reader returns it. Metrics the test
    does not give are null; a key the schema does not know is an error, as in a run."""
    return cell_result(
        experiment,
        load_profile(profile),
        make_cell(experiment, params),
        data,
        metrics={**dict.fromkeys(METRICS[experiment]), **metrics},
        provenance={**PROVENANCE, **(provenance or {})},
        **{**EMPTY_PARTS[experiment], **parts},
    )


def mark_done(
    profile_name: str, experiment: str, skip: frozenset[str] = frozenset(), **metrics: Any
) -> list[dict]:
    """Write, for every cell of the grid not in ``skip``, a result carrying the hash the
    grid expects, so that the grid counts the cell as done; returns the results."""
    profile = load_profile(profile_name)
    data = data_identity(profile)
    written = []
    for cell in load_grid(experiment, profile_name):
        if cell.cell_id not in skip:
            result = make_result(
                experiment, as_dict(cell), metrics, profile=profile_name, data=data
            )
            write_result(result)
            written.append(result)
    return written


def free_port() -> int:
    """A TCP port on localhost that nothing listens on at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
