"""pyproject.toml and environment.yml describe the same environment, and it installs
without a warning from the build backend."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's


def _name(requirement: str) -> str:
    """The package name, normalized as PyPI does (case, and - versus _)."""
    name = re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r) for r in requirements}


def conda_packages() -> set[str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    names = set()
    for dep in deps:
        if isinstance(dep, dict):  # the pip: section
            names |= {_name(r) for r in dep["pip"] if not r.startswith("-e")}
        else:
            names.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    return names - {"python", "pip"}


def test_environment_yml_names_the_same_packages_as_pyproject():
    assert conda_packages() == pyproject_packages()


def test_pyproject_ranges_admit_the_tested_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    vision_req = next(r for r in project["dependencies"] if _name(r) == "torchvision")
    assert _admits(torch_req, (2, 14, 1)) and _admits(vision_req, (0, 29, 1))


def _admits(requirement: str, version: tuple[int, ...]) -> bool:
    for op, bound in re.findall(r"(>=|<=|<|>|==)\s*([\d.]+)", requirement):
        bound = tuple(int(p) for p in bound.split("."))
        ok = {
            ">=": version >= bound,
            "<=": version <= bound,
            "<": version < bound,
            ">": version > bound,
            "==": version[: len(bound)] == bound,
        }[op]
        if not ok:
            return False
    return True


def test_the_package_installs_without_a_deprecation_warning(tmp_path):
    """setuptools warns of what it will stop building (a TOML-table license did, with a
    date): an install that prints such a warning is one that will break. pip shows the
    backend's output only with -v."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-v", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    warnings = [
        line
        for line in (install.stdout + install.stderr).splitlines()
        if "DeprecationWarning" in line
    ]
    assert not warnings, "\n".join(warnings)
