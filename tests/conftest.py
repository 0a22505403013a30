"""Shared fixtures. Outputs of the code under test go to a temporary folder."""

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from paperlib.core.accel import as_input
from paperlib.core.data import synthetic_cifar10
from paperlib.core.registry import GRID_JOBS
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import penalized_cross_entropy, seed_everything, train
from paperlib.report.book import prepare_book
from paperlib.run.grid import run_grid
from paperlib.run.profiles import load_profile
from paperlib.run.store import REPO_ROOT
from paperlib.run.workers import threads_per_worker


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
        outcomes = {e: run_grid("smoke", e, progress=False) for e in GRID_JOBS}
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


# --- a tiny CNN that has learned a synthetic task: something worth attacking ---------


def _tiny_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10),
    )


@pytest.fixture(scope="session")
def synthetic():
    return synthetic_cifar10(300, 40, seed=0)  # one test-batch shape for every attack


@pytest.fixture(scope="session")
def cnn(synthetic):
    """A tiny undefended CNN trained for two epochs: it classifies the synthetic test set."""
    seed_everything(0)
    model = _tiny_cnn()
    train(
        model,
        (synthetic.train_images, synthetic.train_labels),
        (synthetic.test_images, synthetic.test_labels),
        objective=penalized_cross_entropy(make_penalty("base", 0.0)),
        epochs=2,
        batch_size=30,
        lr=1e-2,
        seed=0,
        device=torch.device("cpu"),
        progress=False,
    )
    return model.eval()


@pytest.fixture(scope="session")
def attacked(synthetic, cnn):
    images = as_input(synthetic.test_images)
    labels = synthetic.test_labels
    with torch.no_grad():
        assert (cnn(images).argmax(dim=1) == labels).float().mean() >= 0.9
    return images, labels
