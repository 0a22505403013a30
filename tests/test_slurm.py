"""The Slurm executor against a real single-node Slurm on localhost (not a mock).

CI installs Debian's slurm-wlm and munge; where they are absent the tests skip.
"""

import json
import logging

import pytest
from slurm_cluster import local_slurm, missing_reason

from paperlib.config import ConfigError
from paperlib.grid import SlurmOptions, run_grid

# One smoke grid: the path through Slurm is the same for every experiment, and on a
# two-core CI machine each grid adds minutes.
EXPERIMENTS = ("density",)


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with local_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _results(root, experiment):
    folder = root / "results" / "smoke" / experiment
    return {
        p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k != "provenance"}
        for p in sorted(folder.glob("*.json"))
    }


@pytest.mark.slow
def test_the_smoke_grid_on_slurm_matches_a_local_run(slurm_env, smoke_book, tmp_path, monkeypatch):
    for name in ("SLURM_CONF", "PATH"):
        monkeypatch.setenv(name, slurm_env[name])
    out = tmp_path / "output"
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(out))
    # Without an accounting database sacct fails, and submitit says so on every poll;
    # it then goes by the result files, which is all this test needs.
    monkeypatch.setattr(logging.getLogger("submitit"), "level", logging.ERROR)
    # Each task gets as many threads as each local cell had, so the arithmetic is the
    # same and the results can be compared exactly.
    options = SlurmOptions(gpus_per_task=0, cpus_per_task=smoke_book.threads, timeout_min=30)
    for experiment in EXPERIMENTS:
        outcomes = run_grid("smoke", experiment, executor="slurm", slurm=options, progress=False)
        assert {o.status for o in outcomes} == {"ran"}, [o.error for o in outcomes]
        assert _results(out, experiment) == _results(smoke_book.output, experiment)
        logs = sorted((out / "results" / "smoke" / experiment / "slurm").glob("*/*.out"))
        assert len(logs) == len(outcomes)  # one log per array task, beside the results

    # Resume semantics are the local ones: nothing left to do, nothing submitted.
    again = run_grid("smoke", "density", executor="slurm", slurm=options, progress=False)
    assert {o.status for o in again} == {"skipped"}


def test_slurm_without_sbatch_is_a_clear_error(smoke_env, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="sbatch.*--executor local"):
        run_grid("smoke", "density", executor="slurm", progress=False)


def test_an_unknown_executor_is_rejected(smoke_env):
    with pytest.raises(ConfigError, match="unknown executor 'ray'"):
        run_grid("smoke", "density", executor="ray", progress=False)
