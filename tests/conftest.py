"""Shared fixtures. Outputs of the code under test go to a temporary folder."""

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from paperlib.book import prepare_book
from paperlib.config import load_profile
from paperlib.grid import run_grid, threads_per_worker
from paperlib.store import REPO_ROOT


@pytest.fixture
def smoke_env(tmp_path, monkeypatch):
    """Route results/, runs/ and checkpoints/ to a temporary folder for one test.

    ``PAPERLIB_DATA`` (set by CI to the offline CIFAR-10 copy) is left as it is; without
    it the smoke profile falls back to synthetic images. Decoded copies are cached in
    the repository's data/cache, as `make book` does, so they are decoded only once.
    """
    out = tmp_path / "output"
    out.mkdir()
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(out))
    monkeypatch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
    return out


EXPERIMENTS = ("density", "adversarial", "attribution")


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """The whole smoke profile, once per session: every grid, then the HTML book.

    Returns the output folder, the grid outcomes, the jupyter-book build, the HTML
    folder and the CPU threads each cell ran with (the profile runs two cells at once,
    each on its share of the cores; a run that is to match these results exactly must
    use as many). The environment is restored afterwards; tests that read the outputs
    set ``PAPERLIB_OUTPUT`` to ``smoke_book.output`` themselves.
    """
    root = tmp_path_factory.mktemp("smoke_book")
    book = root / "book_src"
    shutil.copytree(REPO_ROOT / "book", book / "book", ignore=shutil.ignore_patterns("generated"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, book / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAPERLIB_OUTPUT", str(root / "output"))
        patch.setenv("PAPERLIB_CACHE", str(REPO_ROOT / "data" / "cache"))
        outcomes = {e: run_grid("smoke", e, progress=False) for e in EXPERIMENTS}
        prepare_book("smoke", book_dir=book / "book")
        jupyter_book = Path(sys.executable).parent / "jupyter-book"
        build = subprocess.run(
            [str(jupyter_book), "build", str(book), "-W", "--keep-going"],
            capture_output=True,
            text=True,
        )
    return SimpleNamespace(
        output=root / "output",
        outcomes=outcomes,
        build=build,
        html=book / "_build" / "html",
        threads=threads_per_worker(load_profile("smoke").grid.workers),
    )
