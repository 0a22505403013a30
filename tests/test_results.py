"""The results format: one schema, one writer, one reader (paperlib.run.results)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from helpers import PROVENANCE, default_metrics, make_result

from paperlib.core.records import StabilitySummary, as_json, parse
from paperlib.core.registry import GRID_JOBS
from paperlib.core.settings import AdversarialCell, make_cell
from paperlib.run.profiles import cell_hash, load_grid, load_profile
from paperlib.run.results import (
    METRICS,
    PARTS,
    AdversarialMetrics,
    DefendedReport,
    ResultError,
    cell_result,
    is_done,
    load_results,
    parse_result,
    read_result,
    result_json,
    unpaired_attributions,
    write_result,
)
from paperlib.run.store import REPO_ROOT, result_path, write_json

DENSITY = {"activity_l1": 1e-5, "seed": 0}
ADVERSARIAL = {"arch": "vgg16", "regularizer": "l1", "penalty": 0.01, "seed": 0}


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_OUTPUT", str(tmp_path))
    return tmp_path


def test_every_grid_job_has_a_schema():
    assert set(PARTS) == set(METRICS) == set(GRID_JOBS)


def test_the_writer_fills_identity_and_hash_and_reads_back_as_written(out):
    profile = load_profile("smoke")
    result = make_result("density", DENSITY, {"average_density": 0.25})
    cell = make_cell("density", DENSITY)
    assert result.cell == cell.cell_id and result.params == cell
    assert result.config_hash == cell_hash(profile, "density", cell, "synthetic")
    assert result.metrics.average_density == 0.25
    path = write_result(result)
    assert path == result_path("smoke", "density", cell.cell_id)
    assert read_result(path) == result
    assert is_done(path, result.config_hash) and not is_done(path, "0" * 16)
    assert load_results("smoke", "density") == [result]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("provenance"), "missing provenance"),
        (lambda r: r.update(extra=1), "unknown extra"),
        (lambda r: r["metrics"].pop("test_accuracy"), "metrics: missing test_accuracy"),
        (lambda r: r["metrics"].update(accuracy=1), "metrics: unknown accuracy"),
        (lambda r: r.update(experiment="robustness"), "unknown experiment 'robustness'"),
        (lambda r: r.update(metrics=[]), "metrics: expected a mapping, got"),
        (
            lambda r: r["metrics"].update(test_accuracy="high"),
            r"metrics.test_accuracy: expected a number, got 'high'",
        ),
        (
            lambda r: r["metrics"].update(predicted_counts=[1.5] * 10),
            r"metrics.predicted_counts\[0\]: expected an integer",
        ),
        (
            lambda r: r["metrics"].update(test_accuracy_ci=[0.1]),
            r"metrics.test_accuracy_ci: expected 2 values",
        ),
    ],
)
def test_a_stored_result_off_the_schema_is_refused_with_the_field_named(change, message):
    stored = result_json(make_result("density", DENSITY, {}))
    change(stored)
    with pytest.raises(ResultError, match=message):
        parse_result(stored)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(params={"arch": "vgg16"}), r"params: unknown key 'arch'"),
        (lambda r: r["provenance"].pop("device"), "provenance: missing device"),
        (lambda r: r["provenance"].update(threads="2"), "provenance.threads: expected an int"),
    ],
)
def test_parameters_and_provenance_are_checked_too(change, message):
    stored = result_json(make_result("density", DENSITY, {}))
    change(stored)
    with pytest.raises(ResultError, match=message):
        parse_result(stored)


def test_a_result_written_before_processor_time_was_recorded_still_reads():
    stored = result_json(make_result("density", DENSITY, {}))
    del stored["provenance"]["cpu_seconds"]
    assert parse_result(stored).provenance.cpu_seconds is None


def test_the_writer_refuses_a_result_that_would_not_read_back(out):
    """A result changed after it was built (here a count made a float) is not written:
    what the writer leaves on disk always reads back."""
    result = make_result("density", DENSITY, {})
    wrong = dataclasses.replace(
        result, metrics=dataclasses.replace(result.metrics, predicted_counts=[1.5] * 10)
    )
    with pytest.raises(ResultError, match=r"metrics.predicted_counts\[0\]: expected an integer"):
        write_result(wrong)
    assert not result_path("smoke", "density", result.cell).exists()


def test_the_schema_reaches_into_nested_records_and_names_the_field():
    """A result is checked field by field, down to an attack's report: a fault deep in
    the metrics names its whole path, as a missing top-level key does."""
    stored = result_json(make_result("adversarial", ADVERSARIAL, {}))
    del stored["metrics"]["defended"]["fgsm"]["transfer_accuracy"]
    with pytest.raises(ResultError, match=r"metrics.defended.fgsm: missing transfer_accuracy"):
        parse_result(stored)
    stored = result_json(make_result("adversarial", ADVERSARIAL, {}))
    stored["metrics"]["audit"]["checks"] = {"undefended": {"monotone_in_eps": {"passed": "yes"}}}
    with pytest.raises(ResultError, match=r"checks.undefended.monotone_in_eps: missing detail"):
        parse_result(stored)
    stored["metrics"]["audit"]["checks"]["undefended"]["monotone_in_eps"]["detail"] = ""
    with pytest.raises(ResultError, match=r"monotone_in_eps.passed: expected a bool, got 'yes'"):
        parse_result(stored)


def test_a_result_reads_back_typed():
    """The reader's result carries the cell as its dataclass and every record typed, so
    the report layer reads attributes."""
    result = make_result("adversarial", ADVERSARIAL, {})
    assert result.params == AdversarialCell(**ADVERSARIAL)
    assert isinstance(result.metrics, AdversarialMetrics)
    assert isinstance(result.metrics.defended["fgsm"], DefendedReport)
    assert result.provenance.threads == PROVENANCE.threads
    assert result.correct is not None and result.test_correct is None  # its own parts only


def test_nan_is_stored_as_null_where_a_record_allows_a_missing_value_and_refused_elsewhere():
    """JSON has no NaN. A summary over no images has no mean (null); an accuracy that
    came out NaN is a fault, and the writer says which field holds it."""
    summary = {"mean": math.nan, "std": math.nan, "ci": [math.nan, math.nan], "left_out": 30}
    result = make_result("attribution", ADVERSARIAL, {"occlusion_ssd": summary})
    assert result.metrics.occlusion_ssd == StabilitySummary(None, None, (None, None), 30)
    with pytest.raises(ResultError, match="metrics.clean_accuracy: expected a number, got None"):
        make_result("attribution", ADVERSARIAL, {"clean_accuracy": math.nan})


def test_the_builder_refuses_a_part_the_experiment_does_not_have():
    with pytest.raises(ResultError, match="unknown per_image"):
        cell_result(
            "density",
            load_profile("smoke"),
            make_cell("density", DENSITY),
            "synthetic",
            metrics=default_metrics("density"),
            provenance={},
            settings={},
            test_correct="",
            history=[],
            per_image={},
        )


def test_the_reader_skips_a_file_off_the_schema_and_the_grid_recomputes_it(out):
    good = make_result("density", DENSITY, {})
    write_result(good)
    stale = {
        **result_json(make_result("density", {**DENSITY, "seed": 1}, {})),
        "metrics": {"old": 1},
    }
    write_json(result_path("smoke", "density", stale["cell"]), stale)
    with pytest.warns(UserWarning, match="lambda-1e-05-s1.json: metrics: missing"):
        assert load_results("smoke", "density") == [good]
    with pytest.warns(UserWarning, match="will be recomputed"):
        assert not is_done(result_path("smoke", "density", stale["cell"]), stale["config_hash"])


def test_results_load_in_file_name_order_and_a_truncated_file_is_left_out(out):
    cells = ("lambda-1e-05-s0", "lambda-0.0-s0", "lambda-0.0001-s0")
    for lam in (1e-5, 0.0, 1e-4):
        write_result(make_result("density", {"activity_l1": lam, "seed": 0}, {}))
    result_path("smoke", "density", "lambda-1e-06-s0").write_text('{"cell": ')
    with pytest.warns(UserWarning, match="lambda-1e-06-s0.json"):
        results = load_results("smoke", "density")
    # in the order of the file names, not of lambda
    assert [r.cell for r in results] == sorted(cells, key=lambda c: f"{c}.json")
    assert load_results("smoke", "attribution") == []


def test_the_parser_names_where_it_looked():
    with pytest.raises(ResultError, match="^some/file.json: expected a JSON object"):
        parse_result([], where="some/file.json")


COMMITTED = sorted((REPO_ROOT / "results").glob("*/*/*.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(REPO_ROOT)) for p in COMMITTED])
def test_committed_results_read_in_the_current_schema_and_belong_to_the_grid(path):
    """Every result committed to the repository (the study's, a GPU run's) reads back
    under today's schema, names its own profile and cell, and is a cell of the current
    grid: otherwise the book would drop it without a word."""
    result = read_result(path)
    assert result is not None, f"{path} no longer matches the results schema"
    profile, experiment = path.parts[-3], path.parts[-2]
    assert (result.profile, result.experiment, result.cell) == (profile, experiment, path.stem)
    assert result.cell in {c.cell_id for c in load_grid(experiment, profile)}
    assert result.provenance.commit and result.provenance.dirty is not None
    if profile == "study":  # run from a clean checkout, so its commit says what ran
        assert result.provenance.dirty is False


@pytest.mark.parametrize(
    "profile", sorted({p.parts[-3] for p in COMMITTED if p.parts[-2] == "attribution"})
)
def test_every_committed_attribution_explains_the_model_its_adversarial_cell_attacked(profile):
    """Experiment 3 explains experiment 2's models cell for cell: a committed attribution
    result whose clean predictions differ from its adversarial cell's explains another
    model, and its stability could not be set beside that model's robustness."""
    attacked = load_results(profile, "adversarial")
    explained = load_results(profile, "attribution")
    assert unpaired_attributions(explained, attacked) == []


def test_provenance_prices_a_cell_in_processor_time_that_excludes_waiting():
    """cpu_seconds grows with computation and not with time spent waiting, which is
    what lets a study that shared its cores, or was stopped, state what it cost."""
    import datetime as dt
    import time

    import torch

    from paperlib.run.provenance import provenance
    from paperlib.run.splits import Splits

    splits = Splits(train=None, val=None, test=None, source="test", note="")
    started = dt.datetime.now(dt.UTC)
    before = provenance(device=torch.device("cpu"), seed=0, splits=splits, started=started)
    time.sleep(0.5)
    waited = provenance(device=torch.device("cpu"), seed=0, splits=splits, started=started)
    assert waited.cpu_seconds - before.cpu_seconds < 0.2
    assert waited.wall_seconds - before.wall_seconds >= 0.4
    spin_until = time.process_time() + 0.5
    while time.process_time() < spin_until:
        pass
    busy = provenance(device=torch.device("cpu"), seed=0, splits=splits, started=started)
    assert busy.cpu_seconds - waited.cpu_seconds >= 0.4


def test_a_cpu_result_names_the_vector_instructions_its_weights_depend_on():
    import torch

    from paperlib.run.provenance import device_description

    vector = torch.backends.cpu.get_cpu_capability()
    assert f", {vector}, {torch.get_num_threads()} threads)" in device_description(
        torch.device("cpu")
    )


def test_a_rewritten_result_leaves_the_tree_clean_and_a_code_change_does_not(tmp_path, monkeypatch):
    """A rerun rewrites committed results (the study's); the next cell's provenance must
    still say its code is the commit's. A change to code or parameters must not."""
    import subprocess

    from paperlib.run import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for name in ("results/study/adversarial/a.json", "runs/study/a.ipynb", "paperlib/x.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("0")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "results/study/adversarial/a.json").write_text("1")
    (tmp_path / "runs/study/a.ipynb").unlink()
    assert provenance.git_state()["dirty"] is False
    (tmp_path / "paperlib/x.py").write_text("1")
    assert provenance.git_state()["dirty"] is True


def test_a_metrics_record_reads_back_typed_and_writes_back_the_same_json():
    """parse and as_json are inverse: the typed record keeps every field (intervals as
    pairs, reports as records), and writing it again gives the stored JSON."""
    stored = default_metrics("adversarial")
    record = parse(AdversarialMetrics, stored, "metrics")
    assert isinstance(record.defended["fgsm"], DefendedReport)
    fgsm = stored["defended"]["fgsm"]
    assert record.defended["fgsm"].transfer_accuracy == fgsm["transfer_accuracy"]
    assert isinstance(record.clean.accuracy_ci, tuple)
    assert as_json(record) == stored
