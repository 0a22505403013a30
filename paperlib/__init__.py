"""Helpers for reproducing "Regularization and Sparsity for Adversarial Robustness and
Stable Attribution" (Schwartz, Alparslan, Kim). Notebooks import from here only."""

from paperlib.config import ConfigError, cell_hash, load_grid, load_profile, make_cell
from paperlib.data import CLASSES, DataError, load_cifar10, to_unit_float
from paperlib.metrics import accuracy, average_density, correct, hidden_density
from paperlib.models import SingleLayerCNN
from paperlib.plots import activation_maps, density_figure, training_curves
from paperlib.provenance import now, provenance
from paperlib.report import density_table, density_verdicts, verdict_table
from paperlib.splits import data_identity, load_profile_data, make_splits
from paperlib.stats import bootstrap_ci, pack_bits
from paperlib.store import load_results, result_path, write_json
from paperlib.train import default_device, density_objective, seed_everything, train

__all__ = [
    "CLASSES",
    "ConfigError",
    "DataError",
    "SingleLayerCNN",
    "accuracy",
    "activation_maps",
    "average_density",
    "bootstrap_ci",
    "cell_hash",
    "correct",
    "data_identity",
    "default_device",
    "density_figure",
    "density_objective",
    "density_table",
    "density_verdicts",
    "hidden_density",
    "load_cifar10",
    "load_grid",
    "load_profile",
    "load_profile_data",
    "load_results",
    "make_cell",
    "make_splits",
    "now",
    "pack_bits",
    "provenance",
    "result_path",
    "seed_everything",
    "to_unit_float",
    "train",
    "training_curves",
    "verdict_table",
    "write_json",
]
