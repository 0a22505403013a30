"""Tests for paperlib.run.store: atomic writes, safe paths, hashes and stale temporaries.
The results' schema, its reader and its writer are tested in test_results.py."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from paperlib.run import store
from paperlib.run.checkpoints import checkpoint_path
from paperlib.run.store import (
    config_hash,
    output_root,
    read_json,
    remove_stale_temporaries,
    result_path,
    run_path,
    safe_id,
    write_atomic,
    write_json,
)


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "output"
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(root))
    return root


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- writing and reading --------------------------------------------------------------


def test_write_json_creates_folders_and_leaves_only_the_final_file(tmp_path):
    path = tmp_path / "a" / "b" / "x.json"
    write_json(path, {"b": 1, "a": [1.5, "two", None], "c": {"d": True}})
    assert _files(path.parent) == ["x.json"]
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')  # sorted keys
    assert json.loads(text) == {"a": [1.5, "two", None], "b": 1, "c": {"d": True}}


def test_write_json_stores_nan_and_infinity_as_null(tmp_path):
    path = tmp_path / "x.json"
    obj = {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": -float("inf"),
        "ok": 0.5,
        "nested": [1.0, (float("nan"), 2)],
        "deep": {"x": {"y": float("inf")}},
    }
    write_json(path, obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "nan": None,
        "inf": None,
        "ninf": None,
        "ok": 0.5,
        "nested": [1.0, [None, 2]],
        "deep": {"x": {"y": None}},
    }


def test_write_json_replaces_an_existing_result(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"v": 1})
    write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert _files(tmp_path) == ["x.json"]


def test_a_rename_that_fails_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    write_json(path, {"v": "old"})

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"v": "new"})
    assert json.loads(path.read_text()) == {"v": "old"}
    assert _files(tmp_path) == ["x.json"]


def test_a_write_that_fails_midway_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"
    write_atomic(path, b"old")

    def fail(fd):
        raise OSError("io error")

    monkeypatch.setattr(store.os, "fsync", fail)  # after the bytes went to the temporary
    with pytest.raises(OSError, match="io error"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert _files(tmp_path) == ["x.bin"]


def test_an_unserializable_result_writes_nothing(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"v": "old"})
    with pytest.raises(TypeError):
        write_json(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": "old"}
    assert _files(tmp_path) == ["x.json"]


def test_read_json_of_a_missing_file_is_none(tmp_path):
    assert read_json(tmp_path / "nope.json") is None


def test_read_json_warns_about_a_truncated_file_and_returns_none(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"config_hash": "abc", "metrics": {"a": 1}})
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    with pytest.warns(UserWarning, match="ignoring corrupt file .*x.json"):
        assert read_json(path) is None
    assert path.read_bytes() == full[: len(full) // 2]  # left for a rerun to replace


def test_read_json_warns_about_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.warns(UserWarning, match="corrupt file"):
        assert read_json(path) is None


# --- names and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["smoke", "density", "lambda-0", "lambda-1e-05", "lambda-0.0001", "a+b_c", "x" * 100]
)
def test_safe_id_accepts_plain_names(name):
    assert safe_id(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        "a/b",
        "a\\b",
        "",
        "with space",
        ".hidden",
        "-flag",
        "a..b",
        "x" * 101,
        "/abs",
        "é",
    ],
)
def test_safe_id_rejects_names_that_could_escape_or_confuse(name):
    with pytest.raises(ValueError, match="unsafe name"):
        safe_id(name)


def test_safe_id_rejects_a_trailing_newline():
    with pytest.raises(ValueError, match="unsafe name"):
        safe_id("lambda-0\n")


def test_paths_honour_paperlib_output(out):
    assert output_root() == out.resolve()
    assert result_path("smoke", "density", "lambda-1e-05") == (
        out / "results" / "smoke" / "density" / "lambda-1e-05.json"
    )
    assert run_path("smoke", "density", "lambda-0") == (
        out / "runs" / "smoke" / "density" / "lambda-0.ipynb"
    )


def test_relative_paperlib_output_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERLIB_OUTPUT", "rel")
    path = result_path("cpu", "density", "lambda-0")
    assert path.is_absolute()
    assert path == tmp_path.resolve() / "rel" / "results" / "cpu" / "density" / "lambda-0.json"


def test_default_output_root_is_the_repository(monkeypatch):
    monkeypatch.delenv("PAPERLIB_OUTPUT", raising=False)
    assert output_root() == store.REPO_ROOT
    assert (store.REPO_ROOT / "paperlib" / "run" / "store.py").is_file()


UNSAFE = ["../escape", "..", "a/b", "/etc/passwd", "", ".hidden", "a b", "x\n"]


@pytest.mark.parametrize("bad", UNSAFE)
def test_no_unsafe_part_becomes_a_path_to_write(out, bad):
    """Profiles, experiments, cells and checkpoint keys come from parameters: none of them
    may lead a result, an executed notebook or a checkpoint outside the output folders."""
    writers = [
        lambda part: result_path(part, "density", "c"),
        lambda part: result_path("smoke", part, "c"),
        lambda part: result_path("smoke", "density", part),
        lambda part: run_path(part, "density", "c"),
        lambda part: run_path("smoke", "density", part),
        lambda part: checkpoint_path(part, "0123abcd"),
        lambda part: checkpoint_path("smoke", part),
    ]
    for make_path in writers:
        with pytest.raises(ValueError, match="unsafe name"):
            make_path(bad)


def test_paths_stay_under_the_output_root(out):
    for cell in ("lambda-0", "lambda-1e-07", "lambda-0.0001"):
        for path in (result_path("paper", "density", cell), run_path("paper", "density", cell)):
            assert path.resolve().is_relative_to(out.resolve())


# --- stale temporaries ----------------------------------------------------------------


def test_remove_stale_temporaries_deletes_only_hidden_temporaries(tmp_path):
    folder = tmp_path / "smoke" / "density"
    folder.mkdir(parents=True)
    # what a killed write_atomic leaves behind, with mkstemp's own random part
    fd, leftover = tempfile.mkstemp(dir=folder, prefix=".lambda-0.json.", suffix=".tmp")
    os.close(fd)
    stale = [Path(leftover), folder / ".x.json.123.tmp", folder / ".x.partial.tmp.ipynb"]
    keep = ["x.json", "x.ipynb", "x.failed.ipynb", "x.failed.json", ".x.json", "notes.tmp.txt"]
    for path in stale:
        path.touch()
    for name in keep:
        (folder / name).write_text("{}")
    assert remove_stale_temporaries(tmp_path) == 3
    assert not any(p.exists() for p in stale)
    assert _files(folder) == sorted(keep)
    assert remove_stale_temporaries(tmp_path) == 0


def test_remove_stale_temporaries_of_a_missing_folder_is_zero(tmp_path):
    assert remove_stale_temporaries(tmp_path / "absent") == 0


# --- hashes ---------------------------------------------------------------------------


def test_config_hash_is_short_stable_and_order_independent():
    a = config_hash({"x": 1, "y": {"b": 2.0, "a": [1, 2]}})
    assert len(a) == 16 and set(a) <= set("0123456789abcdef")
    assert config_hash({"y": {"a": [1, 2], "b": 2.0}, "x": 1}) == a
    assert config_hash({"x": 1, "y": {"b": 2.5, "a": [1, 2]}}) != a
    assert config_hash({"x": 1, "y": {"b": 2.0, "a": [2, 1]}}) != a
