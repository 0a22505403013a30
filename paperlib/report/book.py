"""Assemble ``book/generated/`` from a profile's executed runs, for jupyter-book.

The book never re-executes a run: cell notebooks are copied as papermill left them;
only the small results notebooks are executed here, over the results JSON.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from paperlib.core.registry import CHECKS, EXPERIMENTS, GRID_JOBS
from paperlib.report.plan_page import analysis_plan_markdown
from paperlib.run.kernels import execute_notebook
from paperlib.run.profiles import available_profiles, load_grid, load_profile
from paperlib.run.results import load_results
from paperlib.run.store import REPO_ROOT, output_root, run_path
from paperlib.run.workers import worker_pool

BOOK_DIR = REPO_ROOT / "book"
# The cell whose narrative notebook opens each chapter: one that every profile's grid
# has. Elastic net at c = 1e-4, because at the paper's 0.01 the model stops learning and
# there is little to walk through.
REPRESENTATIVE = {
    "density": "lambda-0.0001-s0",
    "adversarial": "vgg16-elastic-c0.0001-s0",
    "attribution": "vgg16-elastic-c0.0001-s0",
}
HIDDEN_TAGS = {"parameters", "injected-parameters"}  # shown collapsed in the book
PAGE_WORKERS = 2  # results pages executed at once


def prepare_book(profile_name: str, book_dir: Path = BOOK_DIR) -> None:
    """Fill ``book_dir/generated`` with the chapters' notebooks and the runs appendix."""
    profile = load_profile(profile_name)
    generated = book_dir / "generated"
    if generated.exists():
        shutil.rmtree(generated)
    (generated / "runs").mkdir(parents=True)
    rows, pages = [], []
    beside = _profiles_beside(profile.name)
    others = ",".join(beside[1:])
    for experiment in EXPERIMENTS:
        cell = representative_cell(profile.name, experiment)
        _executed_page(profile.name, experiment, cell, generated / f"{experiment}_cell")
        pages.append((f"{experiment}_results", {"profile": profile.name, "others": others}))
    # The checks ran as grid jobs: the book shows their executed notebooks, never runs them.
    for check in CHECKS:
        cell = load_grid(check, profile.name)[0].cell_id
        _executed_page(profile.name, check, cell, generated / check)
    for job in GRID_JOBS:
        rows += _copy_all_runs(profile.name, job, generated)
    (generated / "runs.md").write_text(_runs_page(profile.name, rows))
    (generated / "analysis_plan.md").write_text(analysis_plan_markdown())
    pages += [(name, {"profiles": ",".join(beside)}) for name in ("summary", "performance")]
    # The pages are independent and mostly kernel start-up, so two run at once.
    with worker_pool(PAGE_WORKERS, gpus=[]) as pool:
        done = [pool.submit(_execute, n, generated / f"{n}.ipynb", p) for n, p in pages]
        for future in done:
            future.result()  # a failing page stops the build, as it should


# The profile whose committed results lead the summary whenever they exist: the study,
# designed to be decisive at CPU scale.
LEADING = "study"


def _profiles_beside(profile: str) -> list[str]:
    """The profiles the summary sets side by side: the study first when it has results,
    then the book's profile, then any other profile that has results (say, a GPU run of
    ``paper`` committed to the repository)."""
    others = [
        p
        for p in available_profiles()
        if p != profile and (output_root() / "results" / p).is_dir() and p != "smoke"
    ]
    leading = [p for p in others if p == LEADING]
    return [*leading, profile, *(p for p in others if p != LEADING)]


def _execute(notebook: str, target: Path, parameters: dict) -> None:
    execute_notebook(notebook, target, parameters)
    _collapse_code(target)


def representative_cell(profile: str, experiment: str) -> str:
    """The cell that opens a chapter: ``REPRESENTATIVE``'s where the profile's grid has
    it, else the grid's first elastic-net cell (the paper profile runs c = 0.01 only),
    else its first cell."""
    cells = [c.cell_id for c in load_grid(experiment, profile)]
    if REPRESENTATIVE[experiment] in cells:
        return REPRESENTATIVE[experiment]
    return next((c for c in cells if "-elastic-" in c), cells[0])


def _executed_page(profile: str, job: str, cell: str, target: Path) -> None:
    """A grid cell's executed notebook as a page (``target`` without its suffix): a
    chapter's walk-through, or a check.

    If that cell failed or never ran, the page says so instead of breaking the build.
    """
    path = run_path(profile, job, cell)
    for source in (path, path.with_suffix(".failed.ipynb")):
        if source.exists():
            _copy_run(source, target.with_suffix(".ipynb"), title=None)
            return
    target.with_suffix(".md").write_text(
        f"# The {cell} cell did not run\n\nNo executed notebook exists for `{cell}` in the "
        f"`{profile}` profile. Run `python -m paperlib grid --profile {profile} "
        f"--experiment {job}` (make book does), then rebuild the book.\n"
    )


def _copy_all_runs(profile: str, experiment: str, generated: Path) -> list[dict]:
    results = {r.cell: r for r in load_results(profile, experiment)}
    rows = []
    for cell in load_grid(experiment, profile):
        source = run_path(profile, experiment, cell.cell_id)
        failed = source.with_suffix(".failed.ipynb")
        page = f"{experiment}-{cell.cell_id}"
        found = [(path, s) for path, s in ((source, "done"), (failed, "failed")) if path.exists()]
        if found:
            executed, status = found[0]
            prefix = "Run" if status == "done" else "Failed run"
            _copy_run(
                executed,
                generated / "runs" / f"{page}.ipynb",
                title=f"{prefix}: {experiment}, {cell.cell_id} ({profile})",
            )
        else:
            page, status = None, "missing"
        result = results.get(cell.cell_id)
        seconds = result.provenance.wall_seconds if result else None
        rows.append(
            {
                "experiment": experiment,
                "cell": cell.cell_id,
                "page": page,
                "status": status,
                "seconds": seconds,
            }
        )
    return rows


def _copy_run(source: Path, target: Path, title: str | None) -> None:
    nb = nbformat.read(source, as_version=4)
    if title is not None:
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        lines = first.source.splitlines()
        first.source = "\n".join([f"# {title}", *lines[1:]])
    _hide_parameter_cells(nb)
    nbformat.write(nb, target)


def _collapse_code(path: Path) -> None:
    """Results pages read as a report: their code folds away behind a toggle."""
    nb = nbformat.read(path, as_version=4)
    _hide_parameter_cells(nb)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "hide-cell" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
    nbformat.write(nb, path)


def _hide_parameter_cells(nb: nbformat.NotebookNode) -> None:
    """The parameters cells stay in the page, collapsed."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if HIDDEN_TAGS & set(tags) and "hide-cell" not in tags:
            cell.metadata["tags"] = [*tags, "hide-cell"]


def _runs_page(profile: str, rows: list[dict]) -> str:
    lines = [
        "# Appendix: every executed run",
        "",
        f"Each grid cell of the `{profile}` profile ran as its own papermill execution of "
        "its notebook. The pages below are those executed notebooks, exactly as papermill "
        "wrote them (only the title is changed); the book does not re-run them. Results "
        f"live in `results/{profile}/`, the executed notebooks in `runs/{profile}/`.",
        "",
        "| experiment | cell | status | wall time (s) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cell = f"{{doc}}`{row['cell']} <runs/{row['page']}>`" if row["page"] else row["cell"]
        seconds = f"{row['seconds']:.0f}" if row["seconds"] is not None else "–"
        lines.append(f"| {row['experiment']} | {cell} | {row['status']} | {seconds} |")
    return "\n".join(lines) + "\n"
