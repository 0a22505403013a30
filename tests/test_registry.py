"""The fixed lists are declared once, in ``paperlib.core.registry``: this ties the
profiles and grids in params/, the notebooks, the book and the builders to them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from paperlib.core.attacks import make_attack
from paperlib.core.models import make_model
from paperlib.core.registry import (
    ARCHITECTURES,
    ATTACKS,
    CHECKS,
    EXPERIMENTS,
    GRID_JOBS,
    PAPER_ARCHITECTURES,
    PAPER_COUNTERPART,
    PAPER_PENALTY,
    REGULARIZERS,
)
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import CELL_TYPES, AttackConfig
from paperlib.report.book import REPRESENTATIVE
from paperlib.report.paper import TABLE1, TABLE2
from paperlib.run.profiles import GRID_OF, PARAMS_DIR, available_profiles, load_grid, load_profile
from paperlib.run.store import NOTEBOOKS_DIR, REPO_ROOT


def test_every_registered_name_builds_something_that_works_and_no_other_name_does():
    """Each registered architecture classifies a CIFAR batch into 10 classes; each
    registered attack returns images of the input's shape in [0, 1] (FGSM within its
    radius); each penalty is a scalar, zero only for base. Unknown names are refused."""
    torch = pytest.importorskip("torch")
    images = torch.rand(2, 3, 32, 32)
    for arch in ARCHITECTURES:
        assert make_model(arch, width=0.0625)(images).shape == (2, 10), arch
    model = make_model("vgg16", width=0.0625).eval()
    labels = model(images).argmax(1)
    for name in ATTACKS:
        adversarial = make_attack(name, model, AttackConfig(deepfool_steps=2))(images, labels)
        assert (
            adversarial.shape == images.shape and 0 <= adversarial.min() <= adversarial.max() <= 1
        )
    fgsm = make_attack("fgsm", model, AttackConfig(), eps=0.01)(images, labels)
    assert (fgsm - images).abs().max() <= 0.01 + 1e-6
    for name in REGULARIZERS:
        value = make_penalty(name, 1.0)(model)
        assert value.ndim == 0 and (value == 0) == (name == "base"), name
    for builder in (lambda: make_model("resnet18"), lambda: make_penalty("l3", 1.0)):
        with pytest.raises(ValueError, match="unknown"):
            builder()
    with pytest.raises(ValueError, match="unknown attack"):
        make_attack("cw", model, AttackConfig())


def test_every_experiment_and_check_has_cells_a_grid_notebooks_and_a_page():
    assert GRID_JOBS == EXPERIMENTS + CHECKS
    for job in GRID_JOBS:  # each job's grid file parses into its own kind of cell
        assert {type(cell) for cell in load_grid(job, "smoke")} == {CELL_TYPES[job]}, job
    assert tuple(REPRESENTATIVE) == EXPERIMENTS
    toc = (REPO_ROOT / "_toc.yml").read_text()
    for experiment in EXPERIMENTS:
        assert (NOTEBOOKS_DIR / f"{experiment}.py").is_file()
        assert (NOTEBOOKS_DIR / f"{experiment}_results.py").is_file()
        assert f"book/{experiment}\n" in toc and f"book/generated/{experiment}_results\n" in toc
    for check in CHECKS:
        assert (NOTEBOOKS_DIR / f"{check}.py").is_file()
        assert f"book/generated/{check}\n" in toc
        assert load_grid(check, "smoke")  # every profile's grid has the check's cells


def _parameters(notebook: Path) -> dict:
    """The literals of a notebook's parameters cell (jupytext percent source)."""
    source = notebook.read_text().split('tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_cell_notebooks_take_a_cells_fields_and_defaults_from_the_registry(experiment):
    params = _parameters(NOTEBOOKS_DIR / f"{experiment}.py")
    cell = CELL_TYPES[experiment]
    assert set(cell.__dataclass_fields__) <= set(params)
    assert params["profile"] in available_profiles()
    assert params.get("arch", ARCHITECTURES[0]) in ARCHITECTURES
    assert params.get("regularizer", REGULARIZERS[0]) in REGULARIZERS


@pytest.mark.parametrize("profile", available_profiles())
def test_every_profile_covers_the_registry_and_keeps_the_papers_strength(profile):
    settings = load_profile(profile)
    assert tuple(settings.adversarial.width) == ARCHITECTURES
    cells = load_grid("adversarial", profile)
    assert {c.regularizer for c in cells} == set(REGULARIZERS)
    assert {c.arch for c in cells} <= set(ARCHITECTURES)
    # A profile that extends another completes it (the sweep adds strengths to paper's
    # c = 0.01): together they keep the paper's strength for every regularizer.
    raw = yaml.safe_load((PARAMS_DIR / f"{profile}.yaml").read_text())
    if "extends" in raw:
        cells += load_grid("adversarial", raw["extends"])
    for regularizer in REGULARIZERS[1:]:
        assert PAPER_PENALTY in {c.penalty for c in cells if c.regularizer == regularizer}


def test_the_grid_file_names_only_registered_experiments_and_values():
    grids = yaml.safe_load((PARAMS_DIR / "grids.yaml").read_text())
    assert set(grids) - {"profiles"} <= set(GRID_OF.values())
    for profile, sections in grids.get("profiles", {}).items():
        assert profile in available_profiles()
        assert set(sections) <= set(GRID_OF.values())


def test_the_papers_tables_use_the_registered_names_in_order():
    assert tuple(TABLE1) == PAPER_ARCHITECTURES
    assert set(PAPER_COUNTERPART) == set(ARCHITECTURES)
    assert set(PAPER_COUNTERPART.values()) == set(PAPER_ARCHITECTURES)
    for row in TABLE1.values():
        assert tuple(row) == REGULARIZERS and all(len(v) == len(ATTACKS) for v in row.values())
    assert all(tuple(by_reg) == REGULARIZERS for by_reg in TABLE2.values())
