"""The package's layers, enforced: core imports neither run nor report; run never
imports report. Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import paperlib

PACKAGE = Path(paperlib.__file__).parent
# What each layer may import from paperlib (itself included).
ALLOWED = {
    "core": {"core"},
    "run": {"core", "run"},
    "report": {"core", "run", "report"},
}


def imported_layers(source: str) -> set[str]:
    """The paperlib subpackages a module's source imports, wherever the import sits."""
    layers = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.module == "paperlib":  # from paperlib import core
                names = [f"paperlib.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "paperlib" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def layer_violations(package: Path) -> list[str]:
    """``module imports layer`` for every import that runs against the layers' order."""
    found = []
    for layer, allowed in ALLOWED.items():
        for module in sorted((package / layer).glob("*.py")):
            for other in sorted(imported_layers(module.read_text()) - allowed):
                found.append(f"{layer}/{module.name} imports paperlib.{other}")
    return found


def test_every_module_sits_in_a_layer():
    top_level = {p.name for p in PACKAGE.glob("*.py")}
    assert top_level == {"__init__.py", "__main__.py"}, "a module outside core, run and report"
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == set(ALLOWED)


def test_imports_follow_the_layers():
    assert layer_violations(PACKAGE) == []


def test_the_check_catches_an_import_against_the_flow(tmp_path):
    for layer in ALLOWED:
        (tmp_path / layer).mkdir()
    (tmp_path / "core" / "models.py").write_text(
        "def f():\n    from paperlib.report import plots  # deferred, still counted\n"
    )
    (tmp_path / "run" / "grid.py").write_text("import paperlib.report.book\n")
    (tmp_path / "report" / "book.py").write_text("from paperlib.run import grid\n")
    assert layer_violations(tmp_path) == [
        "core/models.py imports paperlib.report",
        "run/grid.py imports paperlib.report",
    ]
