"""The notebooks: pairs in sync, no committed outputs, and density.py runs under papermill."""

import ast
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest

from paperlib.core.settings import DensityCell
from paperlib.run.profiles import load_profile
from paperlib.run.results import read_result
from paperlib.run.store import NOTEBOOKS_DIR

SOURCES = sorted(NOTEBOOKS_DIR.glob("*.py"))


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


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


def anatomy_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What a notebook lacks of the shape every notebook here has: a title, an "In this
    notebook we" paragraph, one parameters cell of flat literals, a closing summary, no
    function definitions, and imports from paperlib's public surface only."""
    problems = []
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.startswith("# "):
        problems.append("no title: the first cell must be markdown starting with '# '")
    if not any(
        c.cell_type == "markdown" and "In this notebook we" in c.source for c in nb.cells[:2]
    ):
        problems.append("no 'In this notebook we' paragraph at the top")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(parameters) != 1:
        problems.append(f"{len(parameters)} parameters cells, not one")
    for cell in parameters:
        for node in ast.parse(cell.source).body:
            flat = (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
            )
            if not flat:
                problems.append(f"parameters cell line {node.lineno} is not `name = literal`")
    last = nb.cells[-1] if nb.cells else None
    if last is None or last.cell_type != "markdown" or not last.source.startswith("## Summary"):
        problems.append("no closing '## Summary' cell")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                problems.append(f"defines a function or class: {ast.unparse(node)[:40]!r}")
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if (module or "").startswith("paperlib.") or any(
                n.startswith("paperlib") for n in names
            ):
                problems.append("imports from inside paperlib: use `from paperlib import ...`")
    return problems


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_follows_the_anatomy(source: Path):
    assert anatomy_problems(jupytext.read(source)) == []


def test_the_anatomy_check_names_every_deviation():
    bad = jupytext.reads(
        "\n".join(
            [
                "# %% [markdown]",
                "# Not a title",
                "",
                '# %% tags=["parameters"]',
                'profile = "cpu"',
                "sizes = [1, 2]",
                "",
                '# %% tags=["parameters"]',
                "seed = 0",
                "",
                "# %%",
                "from paperlib.core.models import make_model",
                "import paperlib.run.grid",
                "def helper(x):",
                "    return x",
                "square = lambda x: x * x",
                "",
                "# %% [markdown]",
                "# The end",
            ]
        ),
        fmt="py:percent",
    )
    problems = anatomy_problems(bad)
    assert problems[:5] == [
        "no title: the first cell must be markdown starting with '# '",
        "no 'In this notebook we' paragraph at the top",
        "2 parameters cells, not one",
        "parameters cell line 2 is not `name = literal`",
        "no closing '## Summary' cell",
    ]
    assert sum("imports from inside paperlib" in p for p in problems) == 2
    assert sum("defines a function or class" in p for p in problems) == 2


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
    result = read_result(smoke_env / "results/smoke/density/lambda-0.0001-s0.json")
    metrics = result.metrics
    assert result.params == DensityCell(activity_l1=1e-4, seed=0)
    assert 0.0 <= metrics.average_density <= 1.0
    low, high = metrics.average_density_ci
    assert low <= metrics.average_density <= high
    smoke = load_profile("smoke").density
    assert len(result.test_correct) == smoke.test_size
    assert len(result.history) == smoke.epochs
    # The model learned something: better than the 10% of guessing.
    assert metrics.test_accuracy > 0.2


@pytest.mark.parametrize(
    ("module", "expected"),
    [("paperlib", "[]"), ("paperlib.core.attribution", "[]"), ("paperlib.core.data", "[]")],
)
def test_importing_paperlib_leaves_the_heavy_libraries_unloaded(module, expected):
    """Every grid cell starts a fresh kernel that imports paperlib; torchattacks, captum,
    SciPy and torchvision add seconds each, so they load only when a function that uses
    them is called, not with the package (which exports the attribution helpers)."""
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('torchattacks', 'captum', 'torchvision', 'scipy') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == expected


def test_the_public_surface_is_exactly_what_the_notebooks_import():
    """paperlib/__init__ exports what the notebooks use, no more, no less."""
    import paperlib

    imported = set()
    for source in SOURCES:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "paperlib":
                imported |= {alias.name for alias in node.names}
    assert imported == set(paperlib.__all__)
    assert all(hasattr(paperlib, name) for name in paperlib.__all__)
