"""Shared fixtures. Outputs of the code under test go to a temporary folder."""

import pytest

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
