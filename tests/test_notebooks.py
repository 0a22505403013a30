"""The notebooks: pairs in sync, no committed outputs, and density.py runs under papermill."""

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest

from paperlib.run.profiles import load_profile
from paperlib.run.store import NOTEBOOKS_DIR

SOURCES = sorted(NOTEBOOKS_DIR.glob("*.py"))


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert {p.stem for p in SOURCES} >= {
        "density",
        "density_results",
        "adversarial",
        "adversarial_results",
        "attribution",
        "attribution_results",
        "deepfool_check",
    }


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source: Path):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run jupytext --sync {source}"
    from_py = jupytext.read(source)
    from_ipynb = nbformat.read(paired, as_version=4)
    assert _sources(from_py) == _sources(from_ipynb), f"run jupytext --sync {source}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_carries_no_outputs(source: Path):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_with_flat_literals(source: Path):
    nb = jupytext.read(source)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.slow
def test_density_py_runs_under_papermill_on_smoke(tmp_path, smoke_env):
    """Execute the .py source itself (through jupytext) with papermill."""
    notebook = tmp_path / "density.ipynb"
    nbformat.write(jupytext.read(NOTEBOOKS_DIR / "density.py"), notebook)
    pm.execute_notebook(
        notebook,
        tmp_path / "out.ipynb",
        kernel_name="python3",
        parameters={"profile": "smoke", "activity_l1": 1e-4},
        progress_bar=False,
        cwd=str(NOTEBOOKS_DIR),
    )
    result = json.loads((smoke_env / "results/smoke/density/lambda-0.0001-s0.json").read_text())
    metrics = result["metrics"]
    assert result["params"] == {"activity_l1": 1e-4, "seed": 0}
    assert 0.0 <= metrics["average_density"] <= 1.0
    low, high = metrics["average_density_ci"]
    assert low <= metrics["average_density"] <= high
    smoke = load_profile("smoke").density
    assert len(result["test_correct"]) == smoke.test_size
    assert len(result["history"]) == smoke.epochs
    # The model learned something: better than the 10% of guessing.
    assert metrics["test_accuracy"] > 0.2


@pytest.mark.parametrize(
    ("module", "expected"), [("paperlib", "[]"), ("paperlib.core.attribution", "['captum']")]
)
def test_importing_paperlib_leaves_the_heavy_libraries_unloaded(module, expected):
    """Every grid cell starts a fresh kernel that imports paperlib; torchattacks, SciPy
    and torchvision add seconds each, so only the modules that use them load them."""
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('torchattacks', 'captum', 'torchvision', 'scipy') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == expected
