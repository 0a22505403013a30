"""Where results, executed notebooks and checkpoints live, and how they are written.

Every artifact is written atomically (temporary file, then rename), so a killed run
never leaves a half-written file under a final name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")


def output_root() -> Path:
    """Root of ``results/``, ``runs/``, ``checkpoints/`` and ``data/``.

    The repository by default; ``PAPERLIB_OUTPUT`` moves it (the tests use this).
    """
    return Path(os.environ.get("PAPERLIB_OUTPUT", REPO_ROOT)).resolve()


def safe_id(name: str) -> str:
    """Reject names that could escape their folder (``..``, ``/``, odd characters)."""
    if not isinstance(name, str) or not _SAFE_ID.fullmatch(name) or ".." in name:
        raise ValueError(f"unsafe name {name!r}: use letters, digits and _ . + - only")
    return name


def result_path(profile: str, experiment: str, cell: str) -> Path:
    return (
        output_root() / "results" / safe_id(profile) / safe_id(experiment) / f"{safe_id(cell)}.json"
    )


def run_path(profile: str, experiment: str, cell: str) -> Path:
    return (
        output_root() / "runs" / safe_id(profile) / safe_id(experiment) / f"{safe_id(cell)}.ipynb"
    )


def config_hash(payload: dict[str, Any]) -> str:
    """Short, stable hash of a JSON-able config: a result is reused only if it matches."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, then a
    rename. On failure (a full disk, say) the temporary is removed, whatever ``path``
    held before is untouched, and the error names the path and the cause."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(err.errno, f"could not write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(
            err.errno, f"could not write {path}: {err.strerror or err}; nothing was written there"
        ) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(finite(obj), indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, or None if it is missing or unreadable.

    An unreadable (for example truncated) file is reported and left for a rerun to
    replace; it is never returned. ``results.read_result`` adds the schema check.
    """
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
        if not isinstance(result, dict):
            raise ValueError(f"expected a JSON object, got {type(result).__name__}")
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        warnings.warn(
            f"ignoring corrupt file {path} ({err}); the cell will be recomputed", stacklevel=2
        )
        return None
    return result


# --- claiming a cell -------------------------------------------------------------------
# Two grids on the same profile (two shells, or a local grid beside a Slurm one) must
# never run one cell twice. A process claims a cell by creating its lock file
# exclusively; the file names the holder, so that a claim whose holder died (killed,
# crashed, its machine rebooted) is taken over instead of blocking the cell forever.
CLAIM_GRACE_S = 60  # a lock still empty after this long was left by a crash mid-claim


def lock_path(result: Path) -> Path:
    return result.with_name(f".{result.stem}.lock")


def claim(result: Path) -> bool:
    """Claim the cell whose result is ``result`` for this process; False when a live
    process holds it."""
    lock = lock_path(result)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # a dead holder's lock is removed once, then claimed
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if holder_alive(lock):
                return False
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
        return True
    return False


def release(result: Path) -> None:
    lock_path(result).unlink(missing_ok=True)


def holder_alive(lock: Path) -> bool:
    """Whether the process named in ``lock`` still runs. A holder on another machine
    cannot be checked from here and counts as alive."""
    try:
        holder = json.loads(lock.read_text())
        pid, host = int(holder["pid"]), holder["host"]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        # Being written this instant, or left empty by a crash mid-claim.
        try:
            return time.time() - lock.stat().st_mtime < CLAIM_GRACE_S
        except FileNotFoundError:
            return False
    return host != socket.gethostname() or process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs here. A zombie (dead, not yet reaped: the workers of
    a killed grid, where no init process reaps orphans) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask (macOS): trust the signal check
    return state != "Z"


def remove_dead_claims(folder: Path) -> int:
    """Delete the locks whose holders are gone (a killed grid's); return how many."""
    dead = [lock for lock in folder.glob(".*.lock") if not holder_alive(lock)]
    for lock in dead if folder.exists() else []:
        lock.unlink(missing_ok=True)
    return len(dead)


def live_claims(folder: Path) -> list[Path]:
    """The locks in ``folder`` whose holders still run."""
    return (
        [lock for lock in folder.glob(".*.lock") if holder_alive(lock)] if folder.exists() else []
    )


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the hidden temporaries a killed run left behind; return how many."""
    patterns = (".*.tmp", ".*.tmp.ipynb")
    stale = [p for pattern in patterns for p in folder.rglob(pattern)] if folder.exists() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: store them as None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj
