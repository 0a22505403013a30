"""The test suite's own single-node Slurm cleans up after itself."""

import subprocess
import time
from pathlib import Path

import pytest
from slurm_cluster import job_steps, local_slurm, missing_reason

# A sleep long and odd enough to be told apart from anything else on the machine.
TASK = "sleep 617"


def _running(command: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().replace(b"\0", b" ").strip() == command.encode():
                return True
        except OSError:
            continue
    return False


def test_the_test_cluster_leaves_no_job_step_or_task_behind(tmp_path):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path / "slurm"
    with local_slurm(root) as env:
        submit = ["sbatch", f"--chdir={tmp_path}", f"--output={tmp_path}/job.out", "--wrap", TASK]
        subprocess.run(submit, env=env, check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while not (job_steps(root / "slurm.conf") and _running(TASK)):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
    # slurmd is gone, and with it everything the job ran.
    assert job_steps(root / "slurm.conf") == []
    assert not _running(TASK)
