"""The code is linted and formatted like code, notebooks included (ruff)."""

import subprocess
import sys
from pathlib import Path

from paperlib.run.store import REPO_ROOT

TARGETS = [
    "paperlib",
    "tests",
    "benchmarks",
    "book/_ext",
    *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "notebooks").glob("*.py")),
]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = Path(sys.executable).parent / "ruff"
    targets = [t for t in TARGETS if (REPO_ROOT / t).exists()]
    return subprocess.run(
        [str(ruff), *args, *targets], cwd=REPO_ROOT, capture_output=True, text=True
    )


def test_ruff_check_passes():
    result = _ruff("check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
