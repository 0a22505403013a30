"""Table 2, from results built here with known values (the verdicts: test_verdict_engine)."""

from __future__ import annotations

import numpy as np
from helpers import changed, make_result

from paperlib.core.registry import ARCHITECTURES, REGULARIZERS
from paperlib.report.attribution import table2, table2_beside
from paperlib.report.paper import TABLE2
from paperlib.run.results import Result

N_IMAGES = 100


def _result(arch: str, reg: str, occlusion: float, gradcam: float, spread: float = 0.05, clean=0.7):
    """A cell whose per-image SSDs scatter evenly around the given means."""
    wiggle = np.linspace(-spread, spread, N_IMAGES)
    return make_result(
        "attribution",
        {"arch": arch, "regularizer": reg, "penalty": 0.0 if reg == "base" else 0.01, "seed": 0},
        {"clean_accuracy": clean, "predicted_counts": [100] * 10},
        per_image={
            "occlusion_ssd": (occlusion + wiggle).tolist(),
            "gradcam_ssd": (gradcam + wiggle[::-1]).tolist(),
        },
    )


def _grid(occlusion: dict, gradcam: dict, spread: float = 0.05) -> list[Result]:
    return [
        _result(arch, reg, occlusion[reg], gradcam[reg], spread)
        for arch in ARCHITECTURES
        for reg in REGULARIZERS
    ]


def test_table2_pools_architectures_beside_the_papers_values():
    results = _grid(dict(base=1.0, l1=2.0, l2=3.0, elastic=4.0), dict.fromkeys(REGULARIZERS, 5.0))
    table = table2(results)
    assert table.loc["occlusion", "l2 (ours)"].startswith("3.00 ± ")
    assert table.loc["gradcam", "base (ours)"].startswith("5.00 ± ")
    mean, std = TABLE2["occlusion"]["l1"]
    assert table.loc["occlusion", "l1 (paper)"] == f"{mean:.2f} ± {std:.2f}"


def test_a_regularizer_missing_an_architecture_is_missing_not_partial():
    results = [
        r
        for r in _grid(dict.fromkeys(REGULARIZERS, 1.0), dict.fromkeys(REGULARIZERS, 1.0))
        if not (r.params.regularizer == "l1" and r.params.arch == "vgg16")
    ]
    assert table2(results).loc["occlusion", "l1 (ours)"] == "missing"


def test_table2_pools_the_architectures_of_the_grid_at_the_papers_strength_only():
    """The cpu grid runs VGG-16 alone: its Table 2 is VGG-16's. A weaker penalty's cell
    (c = 1e-4) must not be pooled into the c = 0.01 column."""
    vgg = [
        r
        for r in _grid(dict.fromkeys(REGULARIZERS, 2.0), dict.fromkeys(REGULARIZERS, 3.0))
        if r.params.arch == "vgg16"
    ]
    weak = _result("vgg16", "l1", occlusion=50.0, gradcam=50.0)
    weak = changed(weak, "params.penalty", 1e-4)
    table = table2(vgg + [weak])
    assert table.loc["occlusion", "l1 (ours)"].startswith("2.00 ±")
    assert table.loc["gradcam", "base (ours)"].startswith("3.00 ±")


def test_table2_beside_keeps_a_profile_called_paper_apart_from_the_published_values():
    cpu = _grid(dict.fromkeys(REGULARIZERS, 1.0), dict.fromkeys(REGULARIZERS, 2.0))
    table = table2_beside({"cpu": cpu, "paper": []})
    assert list(table.columns) == ["ours (cpu)", "ours (paper)", "paper (published)"]
    assert table.index.names == ["method", "regularizer"] and len(table) == 8
    assert table.loc[("gradcam", "elastic"), "ours (cpu)"].startswith("2.00 ± ")
    assert table.loc[("gradcam", "elastic"), "ours (paper)"] == "missing"


def test_flat_maps_are_left_out_of_table2_and_counted():
    results = _grid(dict.fromkeys(REGULARIZERS, 2.0), dict.fromkeys(REGULARIZERS, 5.0))
    for r in results:
        if r.params.regularizer == "l2":
            r.per_image["gradcam_ssd"][:3] = [None] * 3  # flat in every architecture
    table = table2(results)
    assert table.loc["gradcam", "l2 (ours)"].endswith("(3 flat left out)")
    assert "left out" not in table.loc["gradcam", "l1 (ours)"]
    # the mean is over the images that remain, not dragged towards 0 by the flat ones
    assert table.loc["gradcam", "l2 (ours)"].startswith("5.0")
