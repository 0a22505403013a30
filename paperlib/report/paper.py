"""The paper's reported numbers and claims, kept as data to compare with.

Schwartz, Alparslan and Kim, "Regularization and Sparsity for Adversarial Robustness
and Stable Attribution". These values are a reference for the results pages; nothing
in this project tunes towards them.
"""

from __future__ import annotations

CITATION = (
    'D. Schwartz, Y. Alparslan and E. Kim, "Regularization and Sparsity for '
    'Adversarial Robustness and Stable Attribution", Drexel University.'
)

# Table 1: test accuracy (%) on attacked images after adversarial training, at
# c = registry.PAPER_PENALTY; columns in ``registry.ATTACKS`` order.
TABLE1 = {
    "resnet50": {
        "base": (19.60, 23.80, 18.00),
        "l1": (34.20, 16.00, 28.40),
        "l2": (25.20, 11.40, 13.20),
        "elastic": (33.80, 37.40, 38.20),
    },
    "mobilenet": {
        "base": (11.40, 22.20, 22.00),
        "l1": (27.20, 22.60, 28.00),
        "l2": (38.40, 30.20, 25.40),
        "elastic": (25.40, 27.00, 19.40),
    },
    "vgg16": {
        "base": (8.40, 7.60, 1.60),
        "l1": (10.80, 8.00, 8.00),
        "l2": (11.30, 10.20, 8.00),
        "elastic": (11.40, 11.40, 10.80),
    },
}

# Table 2: SSD of attribution maps, mean and std over 1,000 images (per regularizer;
# the paper does not say which architecture, or whether it pooled them).
TABLE2 = {
    "occlusion": {
        "base": (26.31, 27.19),
        "l1": (18.51, 15.28),
        "l2": (18.62, 13.48),
        "elastic": (20.92, 17.83),
    },
    "gradcam": {
        "base": (24.53, 34.19),
        "l1": (15.13, 24.95),
        "l2": (15.12, 20.92),
        "elastic": (13.96, 22.51),
    },
}

# The claims, paraphrased, with where the paper makes them.
CLAIMS = {
    "density-falls": (
        "Figure 1, Sec. 4.1",
        "The activation penalty lowers the average density of the hidden layer.",
    ),
    "sparse-as-accurate": (
        "Figure 1, Sec. 4.1",
        "Sparse models (average density at most 0.5) classify as accurately "
        "as the dense, unregularized model, or better.",
    ),
    "regularization-helps": (
        "Table 1, Figure 2, Sec. 4.2",
        "After adversarial training, L1, L2 and elastic-net models are more accurate under "
        "attack than the unregularized model in nearly all cases.",
    ),
    "elastic-most-consistent": (
        "Figure 2, Sec. 5",
        "Elastic net improves robustness the most consistently.",
    ),
    "same-accuracy-slower": (
        "Sec. 4.2",
        "All models reach about the same accuracy; the regularized ones only converge "
        "more slowly (every architecture, at the penalty strength judged).",
    ),
    "regularized-converge-slower": (
        "Figure 3, Sec. 4.2",
        "Regularized VGG-16 models take slightly longer to converge.",
    ),
    "base-overfits": (
        "Figure 3(d), Sec. 4.2",
        "The unregularized VGG-16 starts to overfit: its validation loss climbs and varies "
        "while the regularized models' does not.",
    ),
    "regularized-stabler-occlusion": (
        "Table 2, Sec. 4.3",
        "Regularized models' sliding-patch maps change less when the patch shrinks from 4x4 "
        "to 2x2 than the unregularized model's.",
    ),
    "l1-stablest-occlusion": (
        "Table 2, Sec. 4.3",
        "L1 gives the smallest change of sliding-patch maps when the patch shrinks from 4x4 "
        "to 2x2.",
    ),
    "regularized-stabler-gradcam": (
        "Table 2, Sec. 4.3",
        "Regularized models' Grad-CAM maps change less under a slight blur than the "
        "unregularized model's.",
    ),
    "elastic-most-stable": (
        "Sec. 5",
        "Elastic net gives the most robust results across attribution methods.",
    ),
}

# Section 4.1: a sparse code has an activity ratio (density) in [0, 0.5].
SPARSE_DENSITY = 0.5
