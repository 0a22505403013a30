"""Helpers for reproducing "Regularization and Sparsity for Adversarial Robustness and
Stable Attribution" (Schwartz, Alparslan, Kim).

This is the surface the notebooks use, and they import only from here. The package
has three layers: ``paperlib.core`` (the science), ``paperlib.run`` (profiles, grid,
results, checkpoints) and ``paperlib.report`` (results pages, verdicts, plots, the
book); tests/test_layers.py keeps their imports in that order.
"""

from paperlib.core.accel import as_input
from paperlib.core.attacks import (
    compare_attacks,
    deepfool_attack,
    make_attack,
    run_attack,
    run_autoattack,
)
from paperlib.core.attribution import (
    gaussian_blur,
    gradcam_map,
    gradcam_sensitivity,
    informative,
    occlusion_maps,
    predicted_class,
    rank_correlation,
    ssd,
    ssd_summary,
    stability_summary,
    top_k_intersection,
)
from paperlib.core.audit import audit_finetuned, audit_undefended, failures
from paperlib.core.data import stratified_indices
from paperlib.core.eligibility import collapse_reason
from paperlib.core.metrics import (
    accuracy,
    correct,
    hidden_density,
    perturbation_ratios,
    predict,
    predicted_counts,
)
from paperlib.core.models import SingleLayerCNN
from paperlib.core.records import StabilitySummary
from paperlib.core.registry import ATTACKS
from paperlib.core.regularizers import make_penalty
from paperlib.core.settings import as_dict, make_cell
from paperlib.core.sparsity import sparsity_report
from paperlib.core.stats import bootstrap_ci, pack_bits, pack_outcomes
from paperlib.core.train import (
    adversarial_finetune,
    default_device,
    density_objective,
    penalized_cross_entropy,
    placebo_finetune,
    seed_everything,
    train,
    training_options,
)
from paperlib.report.adversarial import adversarial_verdicts, clean_and_undefended, deepfool_rho
from paperlib.report.attribution import (
    attribution_verdicts,
    per_architecture,
    table2,
    table2_beside,
)
from paperlib.report.audit_tables import (
    audit_details,
    audit_frame,
    audit_table,
    cross_attack_frame,
    cross_attack_table,
)
from paperlib.report.common import (
    at_strength,
    comparisons_frame,
    grid_results,
    page_results,
    run_table,
    seed_frame,
    verdict_table,
    verdicts_at_each_strength,
)
from paperlib.report.density import density_beside, density_display, density_table, density_verdicts
from paperlib.report.forest import forest_plot
from paperlib.report.performance import (
    hardware_table,
    load_recipe_probes,
    plan_vs_measured,
    section_table,
    stage_table,
    training_figure,
    utilisation_table,
)
from paperlib.report.plots import (
    activation_maps,
    adversarial_examples,
    density_figure,
    eps_sweep_figure,
    figure2,
    figure3,
    gradcam_figure,
    occlusion_figure,
    penalty_figure,
    sparsity_scatter,
    sweep_figure,
    training_curves,
)
from paperlib.report.strength_sweep import (
    accuracy_kept,
    penalty_table,
    sparsity_robustness,
    strongest_kept,
)
from paperlib.report.summary import (
    audit_summary,
    claims_evidence,
    claims_table,
    judge_profiles,
    run_facts,
    stale_results,
    strength_table,
    verdicts_by_architecture,
    verdicts_by_strength,
)
from paperlib.report.table1 import paper_near_chance, table1, table1_beside, table1_display
from paperlib.run.checkpoints import clean_trained_model
from paperlib.run.gpu_check import gpu_check_table
from paperlib.run.plan import load_recipes, load_reports, plan_inputs
from paperlib.run.profiles import load_profile
from paperlib.run.provenance import now, provenance
from paperlib.run.results import (
    AdversarialMetrics,
    AttributionMetrics,
    Audit,
    AutoAttackAtEps,
    CleanMetrics,
    CrossAttack,
    DeepfoolCheckMetrics,
    DefendedReport,
    DensityMetrics,
    Endpoints,
    EpsSweep,
    Placebo,
    StandardEps,
    cell_result,
    write_result,
)
from paperlib.run.splits import data_identity, load_profile_data, make_splits

__all__ = [
    "accuracy",
    "accuracy_kept",
    "activation_maps",
    "adversarial_examples",
    "adversarial_finetune",
    "adversarial_verdicts",
    "AdversarialMetrics",
    "as_dict",
    "as_input",
    "at_strength",
    "ATTACKS",
    "attribution_verdicts",
    "AttributionMetrics",
    "Audit",
    "audit_details",
    "audit_finetuned",
    "audit_frame",
    "audit_summary",
    "audit_table",
    "audit_undefended",
    "AutoAttackAtEps",
    "bootstrap_ci",
    "cell_result",
    "claims_evidence",
    "claims_table",
    "clean_and_undefended",
    "clean_trained_model",
    "CleanMetrics",
    "collapse_reason",
    "compare_attacks",
    "comparisons_frame",
    "correct",
    "cross_attack_frame",
    "cross_attack_table",
    "CrossAttack",
    "data_identity",
    "deepfool_attack",
    "deepfool_rho",
    "DeepfoolCheckMetrics",
    "default_device",
    "DefendedReport",
    "density_beside",
    "density_display",
    "density_figure",
    "density_objective",
    "density_table",
    "density_verdicts",
    "DensityMetrics",
    "Endpoints",
    "eps_sweep_figure",
    "EpsSweep",
    "failures",
    "figure2",
    "figure3",
    "forest_plot",
    "gaussian_blur",
    "gpu_check_table",
    "gradcam_figure",
    "gradcam_map",
    "gradcam_sensitivity",
    "grid_results",
    "hardware_table",
    "hidden_density",
    "informative",
    "judge_profiles",
    "load_profile",
    "load_profile_data",
    "load_recipe_probes",
    "load_recipes",
    "load_reports",
    "make_attack",
    "make_cell",
    "make_penalty",
    "make_splits",
    "now",
    "occlusion_figure",
    "occlusion_maps",
    "pack_bits",
    "pack_outcomes",
    "page_results",
    "paper_near_chance",
    "penalized_cross_entropy",
    "penalty_figure",
    "penalty_table",
    "per_architecture",
    "perturbation_ratios",
    "Placebo",
    "placebo_finetune",
    "plan_inputs",
    "plan_vs_measured",
    "predict",
    "predicted_class",
    "predicted_counts",
    "provenance",
    "rank_correlation",
    "run_attack",
    "run_autoattack",
    "run_facts",
    "run_table",
    "section_table",
    "seed_everything",
    "seed_frame",
    "SingleLayerCNN",
    "sparsity_report",
    "sparsity_robustness",
    "sparsity_scatter",
    "ssd",
    "ssd_summary",
    "stability_summary",
    "StabilitySummary",
    "stage_table",
    "stale_results",
    "StandardEps",
    "stratified_indices",
    "strength_table",
    "strongest_kept",
    "sweep_figure",
    "table1",
    "table1_beside",
    "table1_display",
    "table2",
    "table2_beside",
    "top_k_intersection",
    "train",
    "training_curves",
    "training_figure",
    "training_options",
    "utilisation_table",
    "verdict_table",
    "verdicts_at_each_strength",
    "verdicts_by_architecture",
    "verdicts_by_strength",
    "write_result",
]
