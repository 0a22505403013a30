"""Tests for the settings (core.settings) and params/ (run.profiles): profiles, grids,
validation messages, hashes, round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from paperlib.core.registry import PAPER_ARCHITECTURES
from paperlib.core.settings import ConfigError, DensityCell, Profile, from_dict, make_cell
from paperlib.run import profiles
from paperlib.run.analysis import load_analysis_plan
from paperlib.run.profiles import available_profiles, cell_hash, load_grid, load_profile

PAPER_LAMBDAS = [0.0, 1e-7, 1e-6, 1e-5, 1e-4]


@pytest.fixture
def params_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``params/`` folder that ``paperlib.run.profiles`` reads instead of the real one."""
    folder = tmp_path / "params"
    folder.mkdir()
    monkeypatch.setattr(profiles, "PARAMS_DIR", folder)
    return folder


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --- profiles -------------------------------------------------------------------------


def test_available_profiles_are_the_yaml_files_without_the_grid():
    names = available_profiles()
    assert {"smoke", "cpu", "paper"} <= set(names)
    assert "grids" not in names
    assert names == sorted(names)


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_profiles_load_with_the_values_in_their_files(name):
    raw = yaml.safe_load((profiles.PARAMS_DIR / f"{name}.yaml").read_text())
    profile = load_profile(name)
    assert profile.name == name
    for section in ("data", "density"):
        loaded = dataclasses.asdict(getattr(profile, section))
        assert set(raw[section]) <= set(loaded)
        for key, value in raw[section].items():
            assert loaded[key] == value, f"{name}.{section}.{key}"
    assert type(profile.density.lr) is float
    assert type(profile.density.epochs) is int


def test_profiles_follow_the_design():
    """DESIGN.md: smoke may fall back to synthetic data; cpu and paper use real CIFAR-10,
    and paper uses the full 45,000 / 5,000 / 10,000 split."""
    smoke, cpu, paper = (load_profile(n) for n in ("smoke", "cpu", "paper"))
    assert smoke.data.synthetic_fallback
    assert not cpu.data.synthetic_fallback and not paper.data.synthetic_fallback
    sizes = (paper.density.train_size, paper.density.val_size, paper.density.test_size)
    assert sizes == (45_000, 5_000, 10_000)
    assert smoke.density.train_size < cpu.density.train_size < paper.density.train_size


def test_profiles_are_frozen():
    profile = load_profile("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.density.epochs = 3  # type: ignore[misc]


def test_overrides_use_dotted_keys_and_leave_the_rest_alone():
    base = load_profile("smoke")
    profile = load_profile("smoke", {"density.epochs": 3, "density.lr": "5e-4", "data.path": "/x"})
    assert profile.density.epochs == 3
    assert profile.density.lr == 5e-4
    assert profile.data.path == "/x"
    assert profile.density.train_size == base.density.train_size
    assert profile.data.synthetic_fallback == base.data.synthetic_fallback


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"density.epohcs": 2}, r"unknown key 'density\.epohcs' \(did you mean 'epochs'\?\)"),
        ({"density.epochs": "two"}, r"density\.epochs: expected int, got str"),
        ({"adversarial.attacks.fgsm_eps": -0.1}, r"adversarial\.attacks\.fgsm_eps must be >= 0"),
        ({"adversarial.attacks.pgd_eps": -8 / 255}, r"adversarial\.attacks\.pgd_eps must be >= 0"),
        ({"adversarial.sweep_eps": [0.1, -0.1]}, r"adversarial\.sweep_eps must be >= 0"),
        ({"adversarial.width": {"resnet": 0.5}}, r"unknown 'resnet' \(did you mean 'resnet50'\?\)"),
        (
            {"attribution.stride": 3},
            r"attribution\.patch_small \(2\) is smaller than attribution\.stride \(3\)",
        ),
        ({"attribution.patch_sweep": [1, 4]}, r"attribution\.patch_sweep \(1\) is smaller"),
        ({"attribution.patch": 40}, r"attribution\.patch: a patch of 40 pixels does not fit"),
    ],
)
def test_bad_profile_values_name_the_key_and_file(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_profile("smoke", overrides)
    assert "params/smoke.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"arch": "resnet18"}, r"arch: unknown 'resnet18'.*choose from"),
        ({"regularizer": "l3"}, r"regularizer: unknown 'l3'.*choose from"),
        ({"arch": "../../etc"}, r"arch: unknown"),
        ({"seed": -1}, r"seed must be >= 0"),
    ],
)
def test_bad_adversarial_cell_parameters_are_rejected(params, message):
    with pytest.raises(ConfigError, match=message):
        make_cell("adversarial", params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"activity_l1": -1e-5}, r"my cell: activity_l1 must be >= 0\.0, got -1e-05"),
        ({"activity_l2": 1e-5}, r"unknown key 'activity_l2' \(did you mean 'activity_l1'"),
    ],
)
def test_bad_density_cell_parameters_name_the_key(params, message):
    with pytest.raises(ConfigError, match=message):
        make_cell("density", params, where="my cell")


def test_override_below_a_leaf_value_is_rejected():
    with pytest.raises(ConfigError, match=r"density\.epochs\.x: 'epochs' is not a section"):
        load_profile("smoke", {"density.epochs.x": 1})


def test_unknown_key_in_a_profile_file_names_the_file(params_dir):
    _write(params_dir, "mine.yaml", "densty:\n  epochs: 1\n")
    with pytest.raises(ConfigError) as err:
        load_profile("mine")
    message = str(err.value)
    assert message.startswith("params/mine.yaml:")
    assert "unknown key 'densty'" in message
    assert "did you mean 'density'" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("density.epochs", "3", "expected int, got str"),
        ("density.epochs", True, "expected int, got bool"),
        ("density.epochs", 2.5, "expected int, got float"),
        ("density.lr", "abc", "expected float, got str"),
        ("density.lr", False, "expected float, got bool"),
        ("data.download", 1, "expected bool, got int"),
        ("data.path", 5, "expected str, got int"),
        ("density", 5, "expected a mapping, got 5"),
    ],
)
def test_wrong_types_are_rejected_with_the_key(key, value, expected):
    with pytest.raises(ConfigError) as err:
        load_profile("smoke", {key: value})
    message = str(err.value)
    assert message.startswith("params/smoke.yaml:")
    assert expected in message
    assert key in message


def test_integers_are_accepted_for_floats_and_become_floats():
    profile = load_profile("smoke", {"density.lr": 1})
    assert profile.density.lr == 1.0
    assert type(profile.density.lr) is float


def test_numeric_strings_are_floats_because_yaml_reads_1e_5_as_a_string():
    assert yaml.safe_load("x: 1e-5")["x"] == "1e-5"  # the YAML 1.1 quirk being handled
    cell = make_cell("density", {"activity_l1": "1e-5"})
    assert cell.activity_l1 == 1e-5
    assert type(cell.activity_l1) is float


@pytest.mark.parametrize(
    ("key", "value", "minimum"),
    [
        ("density.lr", -1e-3, "0.0"),
        ("density.epochs", 0, "1"),
        ("density.train_size", 9, "10"),
        ("adversarial.finetune_lr", -0.1, "0.0"),
    ],
)
def test_values_below_their_minimum_are_rejected(key, value, minimum):
    with pytest.raises(ConfigError, match=rf"params/smoke\.yaml: {key} must be >= {minimum}"):
        load_profile("smoke", {key: value})


@pytest.mark.parametrize("value", [float("nan"), "nan"])
def test_nan_lambda_is_rejected(value):
    with pytest.raises(ConfigError):
        make_cell("density", {"activity_l1": value})


def test_unknown_profile_suggests_and_lists_the_available_ones():
    with pytest.raises(ConfigError) as err:
        load_profile("smok")
    message = str(err.value)
    assert "unknown profile 'smok'" in message
    assert "did you mean 'smoke'" in message
    assert message.endswith("available profiles: " + ", ".join(available_profiles()))
    assert "cpu, paper, smoke" in message


def test_unknown_experiment_is_rejected_by_make_cell_and_load_grid():
    with pytest.raises(ConfigError, match=r"unknown experiment 'densty' \(did you mean 'density'"):
        make_cell("densty", {})
    with pytest.raises(ConfigError, match=r"params/grids\.yaml: unknown experiment 'densty'"):
        load_grid("densty")


def test_profile_file_that_is_not_yaml_is_rejected(params_dir):
    path = _write(params_dir, "broken.yaml", "density: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_profile("broken")
    assert str(path) in str(err.value)


def test_profile_file_that_is_not_a_mapping_is_rejected(params_dir):
    _write(params_dir, "listy.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_profile("listy")


# --- grids ----------------------------------------------------------------------------


def test_density_grid_has_the_five_lambdas_of_the_paper_with_three_seeds_each():
    cells = load_grid("density")
    assert cells == [DensityCell(lam, seed) for lam in PAPER_LAMBDAS for seed in (0, 1, 2)]
    assert all(type(c.activity_l1) is float for c in cells)
    ids = [c.cell_id for c in cells]
    assert ids[:4] == ["lambda-0.0-s0", "lambda-0.0-s1", "lambda-0.0-s2", "lambda-1e-07-s0"]
    assert ids[-1] == "lambda-0.0001-s2"
    assert len(set(ids)) == 15
    for profile in ("cpu", "paper"):
        assert load_grid("density", profile) == cells  # >= 3 seeds where it matters


def test_adversarial_grid_joins_its_blocks_base_with_seeds_and_every_penalty():
    cells = load_grid("adversarial")
    base = [c for c in cells if c.regularizer == "base"]
    penalized = [c for c in cells if c.regularizer != "base"]
    assert {(c.arch, c.seed) for c in base} == {(a, s) for a in PAPER_ARCHITECTURES for s in (0, 1)}
    assert all(c.penalty == 0.0 for c in base)
    assert {(c.regularizer, c.penalty) for c in penalized} == {
        (r, c) for r in ("l1", "l2", "elastic") for c in (1e-2, 1e-3, 1e-4)
    }
    assert len(cells) == 3 * (2 + 9) and len({c.cell_id for c in cells}) == len(cells)
    assert "vgg16-l1-c0.01-s0" in {c.cell_id for c in cells}
    assert load_grid("attribution") == cells  # experiment 3 explains the same models


def test_a_profiles_own_blocks_replace_the_grid():
    """The study lists blocks of its own: its base models, its ladder and the paper's
    strength, on its own architectures, and nothing of the default grid; in its main run
    each of VGG-16's primary strengths has the base model's ten seeds, paired. ResNet-26
    comes after every VGG-16 cell."""
    cells = load_grid("adversarial", "study")
    assert [c.arch for c in cells] == sorted((c.arch for c in cells), key="vgg16".__ne__)
    assert {c.arch for c in cells} == {"vgg16", "resnet26"}
    cells = [c for c in cells if c.arch == "vgg16"]
    base = {c.seed for c in cells if c.regularizer == "base"}
    assert base == set(range(10))
    for reg, c in load_analysis_plan().chosen["study"]["vgg16"].items():
        assert {x.seed for x in cells if (x.regularizer, x.penalty) == (reg, c)} == base, reg
    ladder = {(c.regularizer, c.penalty) for c in cells if c.regularizer != "base"}
    assert ("l1", 1e-4) in ladder and ("l2", 3e-3) in ladder and ("elastic", 1e-2) in ladder
    assert ("l1", 1e-2) in ladder and ("l2", 1e-4) not in ladder
    assert cells[-1].penalty == 1e-2  # the paper's strength runs last
    assert load_grid("attribution", "study") == load_grid("adversarial", "study")


def test_profile_overrides_replace_an_axis_only_where_a_block_has_it():
    paper = load_grid("adversarial", "paper")
    assert {c.seed for c in paper} == {0, 1, 2}  # both blocks
    smoke = load_grid("adversarial", "smoke")
    assert {c.penalty for c in smoke if c.regularizer != "base"} == {1e-2, 1e-4}
    assert {c.penalty for c in smoke if c.regularizer == "base"} == {0.0}  # untouched
    cpu = load_grid("adversarial", "cpu")
    assert {c.arch for c in cpu} == {"vgg16"}
    assert sum(c.regularizer == "base" for c in cpu) == 2  # two seeds of the base model
    assert {c.penalty for c in cpu if c.regularizer != "base"} == {1e-2, 1e-4}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"regularizer": "base", "penalty": 0.01}, "the base model has no penalty"),
        ({"regularizer": "l1", "penalty": 0.0}, "regularizer 'l1' needs a penalty > 0"),
        ({"regularizer": "l2"}, "regularizer 'l2' needs a penalty > 0"),
    ],
)
def test_a_penalty_must_match_its_regularizer(params, message):
    with pytest.raises(ConfigError, match=rf"my cell: {message}"):
        make_cell("adversarial", {"arch": "vgg16", **params}, where="my cell")


def test_a_profile_override_of_an_axis_no_block_has_is_rejected(params_dir):
    _write(
        params_dir,
        "grids.yaml",
        "density:\n  activity_l1: [0.0]\n  seed: [0]\nprofiles:\n  smoke:\n"
        "    density: {seeds: [0, 1]}\n",
    )
    with pytest.raises(
        ConfigError, match=r"profiles\.smoke\.density\.seeds: no block .* \(did you mean 'seed'"
    ):
        load_grid("density", "smoke")


def test_a_profile_override_that_is_not_a_mapping_is_rejected(params_dir):
    _write(
        params_dir,
        "grids.yaml",
        "density:\n  activity_l1: [0.0]\nprofiles:\n  smoke:\n    density: 1\n",
    )
    with pytest.raises(ConfigError, match=r"profiles\.smoke\.density: expected a mapping"):
        load_grid("density", "smoke")
    # A list is the profile's own blocks: each must be a mapping of axes.
    _write(
        params_dir,
        "grids.yaml",
        "density:\n  activity_l1: [0.0]\nprofiles:\n  smoke:\n    density: [1]\n",
    )
    with pytest.raises(ConfigError, match=r"density: a block must be a mapping of axes, got 1"):
        load_grid("density", "smoke")


def test_grid_values_are_coerced_like_any_cell(params_dir):
    _write(params_dir, "grids.yaml", "density:\n  activity_l1: [0.0, '1e-5', 2]\n")
    assert load_grid("density") == [DensityCell(0.0), DensityCell(1e-5), DensityCell(2.0)]


@pytest.mark.parametrize("body", ["density: {}\n", "density:\n", "other: {a: [1]}\n"])
def test_empty_grid_is_rejected(params_dir, body):
    _write(params_dir, "grids.yaml", body)
    with pytest.raises(ConfigError, match=r"params/grids\.yaml: density: the grid is empty"):
        load_grid("density")


def test_grid_axis_with_no_values_is_rejected(params_dir):
    _write(params_dir, "grids.yaml", "density:\n  activity_l1: []\n")
    with pytest.raises(ConfigError, match=r"density\.activity_l1: expected a non-empty list"):
        load_grid("density")


def test_grid_values_are_validated_and_the_message_names_the_file(params_dir):
    _write(params_dir, "grids.yaml", "density:\n  activity_l1: [0.0, abc]\n")
    with pytest.raises(ConfigError, match=r"params/grids\.yaml: density: activity_l1: expected"):
        load_grid("density")
    _write(params_dir, "grids.yaml", "density:\n  lambda: [0.0]\n")
    with pytest.raises(ConfigError, match=r"params/grids\.yaml: density: unknown key 'lambda'"):
        load_grid("density")


def test_invalid_grid_yaml_is_rejected(params_dir):
    _write(params_dir, "grids.yaml", "density: {activity_l1: [0.0\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_grid("density")


# --- hashes and round trips -----------------------------------------------------------


def test_cell_hash_is_stable_and_sensitive_to_settings_and_cell():
    smoke = load_profile("smoke")
    cell = DensityCell(1e-5)
    reference = cell_hash(smoke, "density", cell, "x.tar.xz")
    assert len(reference) == 16 and int(reference, 16) >= 0
    assert cell_hash(load_profile("smoke"), "density", DensityCell(1e-5), "x.tar.xz") == reference
    assert (
        cell_hash(smoke, "density", make_cell("density", {"activity_l1": "1e-5"}), "x.tar.xz")
        == reference
    )
    changed = {
        cell_hash(load_profile("smoke", {"density.epochs": 3}), "density", cell, "x.tar.xz"),
        cell_hash(smoke, "density", DensityCell(1e-5, seed=1), "x.tar.xz"),
        cell_hash(load_profile("smoke", {"density.lr": 2e-3}), "density", cell, "x.tar.xz"),
        cell_hash(smoke, "density", DensityCell(1e-6), "x.tar.xz"),
        cell_hash(load_profile("cpu"), "density", cell, "x.tar.xz"),
        cell_hash(smoke, "density", cell, "torchvision"),
    }
    assert reference not in changed
    assert len(changed) == 6


def test_cell_hash_ignores_descriptive_text_and_how_the_grid_runs():
    smoke = load_profile("smoke")
    described = dataclasses.replace(smoke, description="something else")
    serial = load_profile("smoke", {"grid.workers": 1})
    assert serial.grid.workers == 1 and smoke.grid.workers == 2
    for other in (described, serial):
        vgg = make_cell(
            "attribution", {"arch": "vgg16", "regularizer": "l1", "penalty": 0.01, "seed": 0}
        )
        for experiment, cell in (("density", DensityCell(0.0)), ("attribution", vgg)):
            assert cell_hash(other, experiment, cell, "x.tar.xz") == cell_hash(
                smoke, experiment, cell, "x.tar.xz"
            )


def test_grid_workers_must_be_positive():
    with pytest.raises(ConfigError, match=r"grid\.workers must be >= 1, got 0"):
        load_profile("smoke", {"grid.workers": 0})
    with pytest.raises(ConfigError, match=r"grid\.workers_per_gpu must be >= 1, got 0"):
        load_profile("paper", {"grid.workers_per_gpu": 0})


def test_the_paper_profile_runs_three_cells_per_gpu_and_the_cpu_profiles_their_workers():
    """Eight GPUs run 24 paper cells, not the three a fixed worker count would; a machine
    without a GPU runs the profile's CPU workers."""
    paper, cpu = load_profile("paper").grid, load_profile("cpu").grid
    assert [paper.workers_here(g) for g in (0, 1, 8)] == [1, 3, 24]
    assert [cpu.workers_here(g) for g in (0, 1)] == [2, 1]


@pytest.mark.parametrize("name", ["smoke", "cpu", "paper"])
def test_profile_round_trips_through_yaml(name):
    profile = load_profile(name)
    text = yaml.safe_dump(dataclasses.asdict(profile))
    assert from_dict(Profile, yaml.safe_load(text), where="round trip") == profile


def test_cells_round_trip_through_yaml():
    for lam in PAPER_LAMBDAS:
        text = yaml.safe_dump(dataclasses.asdict(DensityCell(lam)))
        back = make_cell("density", yaml.safe_load(text))
        assert back == DensityCell(lam)
        assert back.activity_l1 == lam


def test_missing_required_key_is_reported():
    with pytest.raises(ConfigError, match=r"here: missing key 'name'"):
        from_dict(Profile, {}, where="here")


def test_an_unknown_autoattack_component_is_rejected_naming_the_choices():
    profile = load_profile("smoke", {"adversarial.attacks.autoattack": ["apgd-ce", "square"]})
    assert profile.adversarial.attacks.autoattack == ["apgd-ce", "square"]
    with pytest.raises(ConfigError, match=r"autoattack: unknown 'apgd_ce'.*did you mean 'apgd-ce'"):
        load_profile("smoke", {"adversarial.attacks.autoattack": ["apgd_ce"]})


def test_audit_thresholds_are_shares_between_0_and_1():
    with pytest.raises(ConfigError, match=r"adversarial\.audit\.near_zero must be <= 1"):
        load_profile("smoke", {"adversarial.audit.near_zero": 5})


@pytest.mark.parametrize(
    ("small", "large"),
    [
        ("adversarial.eval_size", "adversarial.test_size"),
        ("adversarial.adv_train_size", "adversarial.train_size"),
        ("attribution.n_images", "adversarial.test_size"),
        ("attribution.figure_images", "attribution.n_images"),
    ],
)
def test_a_size_drawn_out_of_another_may_not_exceed_it(small, large):
    """Slicing would cut it short without a word: the error names both keys."""
    size = {"adversarial.test_size": 300, "adversarial.train_size": 128, "attribution.n_images": 8}
    with pytest.raises(ConfigError, match=rf"{small} \(\d+\) exceeds {large} \(\d+\)"):
        load_profile("smoke", {large: size[large], small: size[large] + 1})
