"""The project's fixed lists, declared once: everything else derives from them.

A test (``tests/test_registry.py``) ties these names to the profiles and grids in
``params/``, the notebooks and the builders that accept them.
"""

# The paper's three architectures, in its Table 1's row order.
PAPER_ARCHITECTURES = ("resnet50", "mobilenet", "vgg16")
# Every architecture a profile may run: the paper's, then reduced members of their
# families that a CPU can train (each named for what it is, never for the paper's).
ARCHITECTURES = (*PAPER_ARCHITECTURES, "resnet26")
# The paper's row that a reduced architecture stands in for, where the paper's own
# numbers are set beside ours or supply a claim's margin.
PAPER_COUNTERPART = {**{a: a for a in PAPER_ARCHITECTURES}, "resnet26": "resnet50"}
REGULARIZERS = ("base", "l1", "l2", "elastic")  # in the paper's table order
ATTACKS = ("deepfool", "fgsm", "pgd")  # the paper's three, in Table 1's column order
RADIUS_ATTACKS = ("fgsm", "pgd")  # those with an L-inf radius: the eps sweep, 8/255
# AutoAttack's standard ensemble (Croce and Hein 2020), in the order it runs.
AUTOATTACK_COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")
# One notebook and one results page each; experiment 3 explains experiment 2's models.
EXPERIMENTS = ("density", "adversarial", "attribution")
# The experiments with an architecture axis: experiment 2's grid and experiment 3 on its
# models (experiment 1 has its own one-layer network).
ARCHITECTURE_EXPERIMENTS = ("adversarial", "attribution")
# Checks that run as grid jobs after the experiments: each has a notebook, a cell type
# and a grid, and its executed notebook appears in the book beside the results.
CHECKS = ("deepfool_check",)
GRID_JOBS = EXPERIMENTS + CHECKS  # what `paperlib grid --experiment all` runs, in order
OPTIMIZERS = ("sgd", "adam")  # sgd: Nesterov momentum with a one-cycle schedule; adam: constant
EXECUTORS = ("local", "slurm")  # where grid cells run: here, or as a Slurm job array
# c of every kernel penalty in the paper's Table 1 and Table 2 (Sec. 4.2). The grids'
# other strengths are declared in params/grids.yaml, which must keep this one.
PAPER_PENALTY = 0.01
