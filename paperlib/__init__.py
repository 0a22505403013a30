"""Helpers for reproducing "Regularization and Sparsity for Adversarial Robustness and
Stable Attribution" (Schwartz, Alparslan, Kim). Notebooks import from here only."""

from paperlib.accel import as_input
from paperlib.attacks import make_attack, run_attack, run_autoattack
from paperlib.audit import audit_finetuned, audit_undefended, failures
from paperlib.checkpoints import checkpoint_path, clean_trained_model, train_or_load
from paperlib.config import (
    ATTACK_NAMES,
    ConfigError,
    as_dict,
    cell_hash,
    clean_model_config,
    load_grid,
    load_profile,
    make_cell,
)
from paperlib.data import CLASSES, DataError, load_cifar10, stratified_indices, to_unit_float
from paperlib.metrics import (
    accuracy,
    average_density,
    correct,
    hidden_density,
    predict,
    predicted_counts,
)
from paperlib.models import SingleLayerCNN, make_model
from paperlib.plots import (
    activation_maps,
    adversarial_examples,
    density_figure,
    training_curves,
)
from paperlib.provenance import now, provenance
from paperlib.regularizers import make_penalty
from paperlib.report.adversarial import audit_frame, cross_attack_frame
from paperlib.report.common import verdict_table
from paperlib.report.density import density_table, density_verdicts
from paperlib.report.verdicts import collapse_reason
from paperlib.sparsity import sparsity_report, weight_sparsity
from paperlib.splits import data_identity, load_profile_data, make_splits
from paperlib.stats import bootstrap_ci, pack_bits
from paperlib.store import config_hash, load_results, result_path, write_json
from paperlib.train import (
    adversarial_finetune,
    default_device,
    density_objective,
    penalized_cross_entropy,
    seed_everything,
    train,
    training_options,
)

__all__ = [
    "as_input",
    "ATTACK_NAMES",
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
