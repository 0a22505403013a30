"""The paper profile's exact code path, on CPU, before any GPU sees it.

The profile is copied with only its sizes shrunk (images, epochs, attack iterations),
so every other setting is the paper's: full-width ResNet-50,
MobileNet and VGG-16, the standard AutoAttack with all four components, every eps,
patch and blur sweep, and cells of all three seeds. A paper cell must never crash for
the first time on a GPU.
"""

import os
import shutil

import pytest
import yaml

from paperlib.core.registry import ATTACKS, AUTOATTACK_COMPONENTS, PAPER_ARCHITECTURES
from paperlib.run import profiles
from paperlib.run.grid import run_grid
from paperlib.run.profiles import load_grid, load_profile
from paperlib.run.results import load_results

# Only sizes change (images, epochs, iterations). Every other setting stays the paper's.
SHRUNK = {
    "density": {"train_size": 60, "val_size": 20, "test_size": 40, "epochs": 1},
    "adversarial": {
        "train_size": 40,
        "val_size": 20,
        "test_size": 20,
        "eval_size": 10,
        "adv_train_size": 10,
        "epochs": 1,
        "finetune_epochs": 1,
        "batch_size": 20,
        "attacks": {
            "pgd_steps": 2,
            "deepfool_steps": 3,
            "standard_steps": 2,
            "autoattack_steps": 2,
            "square_queries": 4,
            "batch_size": 10,
        },
    },
    "attribution": {"n_images": 2, "figure_images": 2, "batch_size": 2},
}
# One cell per architecture; together they cover every regularizer kind and every seed.
ADVERSARIAL_CELLS = ["resnet50-base-s0", "mobilenet-l1-c0.01-s1", "vgg16-elastic-c0.01-s2"]


def _shrink(section: dict, sizes: dict) -> None:
    for key, value in sizes.items():
        if isinstance(value, dict):
            _shrink(section[key], value)
        else:
            assert key in section, key  # a renamed setting must not slip through
            section[key] = value


@pytest.mark.slow
def test_the_paper_profiles_cells_run_on_a_handful_of_images(tmp_path, smoke_env, monkeypatch):
    params = tmp_path / "params"
    shutil.copytree(profiles.PARAMS_DIR, params)
    paper = yaml.safe_load((params / "paper.yaml").read_text())
    for section, sizes in SHRUNK.items():
        _shrink(paper[section], sizes)
    if not os.environ.get("PAPERLIB_DATA"):
        # No CIFAR-10 copy here (and no network): synthetic images of the same shape
        # take the same code path from the splits onwards.
        paper["data"] |= {"download": False, "synthetic_fallback": True}
    (params / "paper.yaml").write_text(yaml.safe_dump(paper))
    monkeypatch.setenv("PAPERLIB_PARAMS", str(params))  # for the kernels
    monkeypatch.setattr(profiles, "PARAMS_DIR", params)  # for this process

    grid = {c.cell_id: c for c in load_grid("adversarial", "paper")}
    assert {grid[c].seed for c in ADVERSARIAL_CELLS} == {0, 1, 2}
    assert {grid[c].arch for c in ADVERSARIAL_CELLS} == set(PAPER_ARCHITECTURES)
    runs = {
        "density": ["lambda-0.0001-s2"],
        "adversarial": ADVERSARIAL_CELLS,
        "attribution": ADVERSARIAL_CELLS,
    }
    for experiment, cells in runs.items():
        outcomes = run_grid("paper", experiment, only=cells, workers=1, progress=False)
        assert [o.status for o in outcomes] == ["ran"] * len(cells), [o.error for o in outcomes]

    cfg = load_profile("paper").adversarial
    assert set(cfg.width.values()) == {1.0}
    for result in load_results("paper", "adversarial"):
        metrics = result.metrics
        assert metrics.autoattack.components == list(AUTOATTACK_COMPONENTS)
        assert len(metrics.eps_sweep.eps) == len(cfg.sweep_eps)
        assert set(metrics.cross_attack) == set(ATTACKS)
    explained = load_results("paper", "attribution")
    attribution = load_profile("paper").attribution
    compared = {str(p) for p in attribution.patch_sweep if p != attribution.patch_small}
    assert len(explained) == len(ADVERSARIAL_CELLS)
    assert all(set(r.metrics.patch_sweep) == compared for r in explained)
