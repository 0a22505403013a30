"""Helpers for reproducing "Regularization and Sparsity for Adversarial Robustness and
Stable Attribution" (Schwartz, Alparslan, Kim). Notebooks import from here only."""

from paperlib.core.accel import as_input
from paperlib.core.attacks import make_attack, run_attack, run_autoattack
from paperlib.core.audit import audit_finetuned, audit_undefended, failures
from paperlib.core.data import CLASSES, DataError, load_cifar10, stratified_indices, to_unit_float
from paperlib.core.metrics import (
    accuracy,
    average_density,
    correct,
    hidden_density,
    predict,
    predicted_counts,
)
from paperlib.core.models import SingleLayerCNN, make_model
from paperlib.core.registry import ATTACKS
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import ConfigError, as_dict, make_cell
from paperlib.core.sparsity import sparsity_report, weight_sparsity
from paperlib.core.stats import bootstrap_ci, pack_bits
from paperlib.core.train import (
    adversarial_finetune,
    default_device,
    density_objective,
    penalized_cross_entropy,
    seed_everything,
    train,
    training_options,
)
from paperlib.report.adversarial import audit_frame, cross_attack_frame
from paperlib.report.common import verdict_table
from paperlib.report.density import density_table, density_verdicts
from paperlib.report.plots import (
    activation_maps,
    adversarial_examples,
    density_figure,
    training_curves,
)
from paperlib.report.verdicts import collapse_reason
from paperlib.run.checkpoints import checkpoint_path, clean_trained_model, train_or_load
from paperlib.run.profiles import cell_hash, clean_model_config, load_grid, load_profile
from paperlib.run.provenance import now, provenance
from paperlib.run.splits import data_identity, load_profile_data, make_splits
from paperlib.run.store import config_hash, load_results, result_path, write_json

__all__ = [
    "as_input",
    "ATTACKS",
    "CLASSES",
    "ConfigError",
    "DataError",
    "SingleLayerCNN",
    "accuracy",
    "activation_maps",
    "adversarial_examples",
    "adversarial_finetune",
    "as_dict",
    "audit_finetuned",
    "audit_frame",
    "audit_undefended",
    "average_density",
    "bootstrap_ci",
    "cell_hash",
    "checkpoint_path",
    "clean_model_config",
    "clean_trained_model",
    "collapse_reason",
    "config_hash",
    "correct",
    "cross_attack_frame",
    "data_identity",
    "default_device",
    "density_figure",
    "density_objective",
    "density_table",
    "density_verdicts",
    "failures",
    "hidden_density",
    "load_cifar10",
    "load_grid",
    "load_profile",
    "load_profile_data",
    "load_results",
    "make_attack",
    "make_cell",
    "make_model",
    "make_penalty",
    "make_splits",
    "now",
    "pack_bits",
    "penalized_cross_entropy",
    "predict",
    "predicted_counts",
    "provenance",
    "result_path",
    "run_attack",
    "run_autoattack",
    "seed_everything",
    "sparsity_report",
    "stratified_indices",
    "to_unit_float",
    "train",
    "train_or_load",
    "training_curves",
    "training_options",
    "verdict_table",
    "weight_sparsity",
    "write_json",
]
