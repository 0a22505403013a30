"""Helpers the test files share: results built with the project's own writer
(``results.cell_result``), so that a fixture can never drift from the schema, and a free
port for the servers the tests start (Jupyter, Slurm), and a slow stand-in for a cell."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Any

from paperlib.core.records import (
    AttackReport,
    SparsityReport,
    StabilitySummary,
    as_json,
)
from paperlib.core.settings import as_dict, make_cell
from paperlib.run.profiles import load_grid, load_profile, merged
from paperlib.run.provenance import Provenance
from paperlib.run.results import (
    AdversarialMetrics,
    AttributionMetrics,
    Audit,
    AutoAttackAtEps,
    CleanMetrics,
    CrossAttack,
    DeepfoolCheckMetrics,
    DefendedReport,
    DensityMetrics,
    Endpoints,
    EpsSweep,
    Placebo,
    Result,
    StandardEps,
    cell_result,
    parse_result,
    result_json,
    write_result,
)
from paperlib.run.splits import data_identity

PROVENANCE = Provenance(
    commit="0123456789abcdef",
    dirty=False,
    packages={"torch": "2.14.1"},
    device="CPU (x86_64, 2 threads)",
    threads=2,
    seed=0,
    data_source="synthetic (no CIFAR-10 copy found)",
    data_note="",
    started_at="2024-01-01T00:00:00+00:00",
    wall_seconds=12.5,
    cpu_seconds=20.0,
)
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


ATTACKS = ("deepfool", "fgsm", "pgd")
INTERVAL = (0.4, 0.6)
REPORT = AttackReport(
    accuracy=0.5, success_rate=0.5, linf=0.03, l2=1.0, rho=0.05, rho_ci=(0.04, 0.06),
    fooled=5, not_fooled=5,
)  # fmt: skip
SUMMARY = StabilitySummary(mean=1.0, std=0.5, ci=(0.9, 1.1), left_out=0)


def default_metrics(experiment: str) -> dict[str, Any]:
    """A complete metrics record of ``experiment``, built with the project's record
    types, with plain values: what a test does not set."""
    if experiment == "density":
        return as_json(
            DensityMetrics(
                average_density=0.5, average_density_ci=INTERVAL, test_accuracy=0.5,
                test_accuracy_ci=INTERVAL, train_accuracy=0.5, val_accuracy=0.5,
                predicted_counts=[10] * 10,
            )
        )  # fmt: skip
    if experiment == "adversarial":
        return as_json(
            AdversarialMetrics(
                clean=CleanMetrics(
                    accuracy=0.5, predicted_counts=[10] * 10, accuracy_ci=INTERVAL,
                    test_size=100, accuracy_on_attacked=0.5, val_accuracy=0.5,
                    train_accuracy=0.5,
                ),
                sparsity=SparsityReport(
                    activation_density=0.5, activation_density_per_layer={"features.0": 0.5},
                    weight_sparsity={"0.001": 0.1}, hoyer=0.5, hoyer_per_layer_mean=0.5,
                ),
                undefended=dict.fromkeys(ATTACKS, REPORT),
                defended=dict.fromkeys(
                    ATTACKS,
                    DefendedReport(
                        **vars(REPORT), clean_accuracy=0.5, accuracy_ci=INTERVAL,
                        transfer_accuracy=0.5, transfer_accuracy_ci=INTERVAL,
                    ),
                ),
                standard_eps=StandardEps(eps=8 / 255, fgsm=REPORT, pgd=REPORT),
                eps_sweep=EpsSweep(eps=[8 / 255], fgsm=[0.5], pgd=[0.5]),
                autoattack=AutoAttackAtEps(
                    **vars(REPORT), components=["apgd-ce"], fooled_by={"apgd-ce": 5},
                    eps=8 / 255,
                ),
                endpoints=Endpoints(eps=[8 / 255], pgd=[0.5], autoattack=[0.5]),
                placebo=Placebo(clean_accuracy=0.5, transfer_accuracy=dict.fromkeys(ATTACKS, 0.5)),
                cross_attack={a: dict.fromkeys(ATTACKS, CrossAttack(0.5, 0.5)) for a in ATTACKS},
                audit=Audit(checks={}, failures=[]),
            )
        )  # fmt: skip
    if experiment == "attribution":
        summaries = dict.fromkeys(
            ("occlusion_ssd", "gradcam_ssd", "occlusion_spearman", "gradcam_spearman",
             "occlusion_topk", "gradcam_topk", "gradcam_sensitivity"),
            SUMMARY,
        )  # fmt: skip
        return as_json(
            AttributionMetrics(
                **summaries, patch_sweep={"4": SUMMARY}, sigma_sweep={"0.5": SUMMARY},
                accuracy_on_images=0.5, clean_accuracy=0.5, predicted_counts=[10] * 10,
            )
        )  # fmt: skip
    return as_json(DeepfoolCheckMetrics(implementations=[], images=10, correct_before=5))


def make_result(
    experiment: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    provenance: dict[str, Any] | None = None,
    profile: str = "smoke",
    data: str = "synthetic",
    **parts: Any,
) -> Result:
    """A result as a notebook writes it and the reader returns it. Metrics the test
    does not give take :func:`default_metrics`' values; a key the schema does not know,
    or a value of the wrong type, is an error, as in a run."""
    return cell_result(
        experiment,
        load_profile(profile),
        make_cell(experiment, params),
        data,
        metrics=merged(default_metrics(experiment), metrics),
        provenance=dataclasses.replace(PROVENANCE, **(provenance or {})),
        **{**EMPTY_PARTS[experiment], **parts},
    )


def changed(result: Result, path: str, value: Any) -> Result:
    """``result`` with the stored value at ``path`` (such as "metrics.clean.accuracy")
    replaced, read back through the reader's own checks."""
    stored = result_json(result)
    *parents, last = path.split(".")
    node = stored
    for key in parents:
        node = node[key]
    node[last] = as_json(value)
    return parse_result(stored)


def mark_done(
    profile_name: str, experiment: str, skip: frozenset[str] = frozenset(), **metrics: Any
) -> list[Result]:
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


def slow_job(markers: str, index: int, seconds: float = 60.0) -> int:
    """A stand-in for a grid cell, for the worker pool: it leaves a marker when it
    starts, then takes ``seconds``."""
    Path(markers, f"started-{index}").touch()
    time.sleep(seconds)
    return index
