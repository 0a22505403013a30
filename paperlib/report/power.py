"""Power on the page: each claim's minimum detectable effect (MDE) for a profile's
design, from the variances its results show (or the plan's prior where it has none),
and the fewest paired seeds whose MDE reaches the claim's margin."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paperlib.core.registry import ARCHITECTURE_EXPERIMENTS, ATTACKS
from paperlib.core.settings import ConfigError
from paperlib.core.stats import design_se, minimum_detectable_effect, variance_components
from paperlib.report.claims_robustness import transfer_net
from paperlib.report.common import grid_results
from paperlib.report.judge import DISPLAY, Verdict
from paperlib.report.margins import margin
from paperlib.report.summary import all_verdicts, verdicts_on
from paperlib.run.analysis import load_analysis_plan
from paperlib.run.profiles import load_grid, load_profile

MAX_SEEDS = 30  # the search for enough seeds stops here


def design_power(profile: str, seeds: int | None = None, arch: str | None = None) -> pd.DataFrame:
    """One row per claim (primary endpoint): the design's seeds and images, the variances
    used (measured on the profile's results, else the plan's prior), the MDE, the margin,
    and the fewest seeds whose MDE would reach the margin. ``seeds`` plans another number
    of paired seeds than the grid's. ``arch`` plans one architecture's claims of
    experiments 2 and 3 alone (the summary's per-architecture verdicts): its own
    variances, margins, family and seeds, so that a stage adding an architecture can
    size its seeds from its own pilot."""
    run = sorted({c.arch for c in load_grid("adversarial", profile)})
    if arch is not None and arch not in run:
        raise ConfigError(
            f"the {profile} profile's grid runs no {arch!r}: plan one of {run}, or none"
        )
    plan = load_analysis_plan()
    measured = {v.claim: v for v in _measured(profile, arch) if v.role == "primary"}
    claims = {n: c for n, c in plan.claims.items() if arch is None or n in PER_ARCH}
    rows = []
    for name, claim in claims.items():
        images = _images(profile, claim.unit, name)
        n_seeds = seeds or _grid_seeds(profile, name, arch)
        seed_var, image_var, source = _variances(
            measured.get(name),
            plan.prior_seed_sd[claim.unit],
            _base_variances(profile, name, arch),
        )
        image_var = image_var if images > 1 else 0.0
        margin = _margin(measured.get(name), claim, profile, arch)
        family = (
            len(measured[name].comparisons) if name in measured else _family(profile, name, arch)
        )
        alpha = plan.alpha / max(family, 1)
        mde = _mde(seed_var, image_var, n_seeds, images, alpha, plan.power)
        enough = next(
            (
                s
                for s in range(2, MAX_SEEDS + 1)
                if margin is not None
                and _mde(seed_var, image_var, s, images, alpha, plan.power) <= margin
            ),
            None,
        )
        scale, unit = DISPLAY[claim.unit]
        rows.append(
            {
                "claim": name,
                "seeds": n_seeds,
                "images": images,
                "comparisons": family,
                "variances from": source,
                "seed sd": scale * np.sqrt(seed_var),
                "image sd": scale * np.sqrt(image_var),
                "MDE": scale * mde,
                "margin": None if margin is None else scale * margin,
                "unit": unit,
                "seeds for MDE <= margin": enough if enough else f"> {MAX_SEEDS}",
            }
        )
    return pd.DataFrame(rows).round(3)


# Comparisons per architecture in each claim's family (the plan's families).
PER_ARCH = {
    "regularization-helps": 9,  # attack x regularizer
    "elastic-most-consistent": 6,  # attack x rival
    "same-accuracy-slower": 3,
    "regularized-stabler-occlusion": 3,
    "regularized-stabler-gradcam": 3,
    "l1-stablest-occlusion": 3,
    "elastic-most-stable": 6,  # method x rival
}


def _measured(profile: str, arch: str | None) -> list[Verdict]:
    """The profile's verdicts: on every architecture, or on ``arch`` alone."""
    if arch is None:
        return all_verdicts(profile)
    results = {e: grid_results(profile, e)[0] for e in ARCHITECTURE_EXPERIMENTS}
    return verdicts_on(arch, results, load_profile(profile).testable)


def _family(profile: str, claim: str, arch: str | None = None) -> int:
    """How many comparisons the claim's family has in the profile's grid (on ``arch``
    alone where given)."""
    if claim in ("density-falls", "sparse-as-accurate"):
        return sum(1 for c in load_grid("density", profile) if c.activity_l1 > 0 and c.seed == 0)
    if claim in ("regularized-converge-slower", "base-overfits"):
        return 3  # VGG-16's three regularizers
    archs = {arch} if arch else {c.arch for c in load_grid("adversarial", profile)}
    return PER_ARCH[claim] * len(archs)


def _mde(seed_var, image_var, seeds, images, alpha, power) -> float:
    df = max(seeds - 1, 1) if seed_var > 0 else max(images - 1, 1)
    return minimum_detectable_effect(
        design_se(seed_var, image_var, seeds, images), df, alpha, power
    )


def _variances(
    verdict: Verdict | None, prior_sd: float, base: tuple[float, float] | None = None
) -> tuple[float, float, str]:
    """(seed variance, image variance, where they come from) of the claim's paired
    differences: measured on its comparisons where they have two seeds or more. Short
    of that, a difference of two arms is taken to vary twice as much as the base arm
    among its replicate seeds (``base``, the pilot's; independent arms, which pairing
    only improves on), and short of that the plan's prior stands in for the seeds. It
    stands in too where the results have no spread at all, as in the verdict engine, and
    for a seed variance of zero: a variance component is truncated at zero, so from two
    or three seeds a zero says too few seeds, not seeds alike, and would plan too few."""
    rows = [c for c in (verdict.comparisons if verdict else ()) if "image var" in c]
    if rows and min(c.get("seeds", 1) for c in rows) >= 2:
        seed_var = float(np.median([c["seed var"] for c in rows]))
        image_var = float(np.median([c["image var"] for c in rows]))
        if seed_var == image_var == 0:  # every seed alike: as the engine, take the prior
            return prior_sd**2, 0.0, "prior (results without spread)"
        if seed_var == 0:
            return prior_sd**2, image_var, "results (images), prior (seed variance 0)"
        return seed_var, image_var, "results"
    if base is not None:
        if base[0] == 0:
            return prior_sd**2, 2 * base[1], "base's replicate seeds x 2, prior (seed variance 0)"
        return 2 * base[0], 2 * base[1], "base's replicate seeds x 2"
    if rows:
        image_var = float(np.median([c["image var"] for c in rows]))
        return prior_sd**2, image_var, "results (images), prior (seeds)"
    return prior_sd**2, 0.25, "prior (no results)"


def _base_variances(
    profile: str, claim: str, arch: str | None = None
) -> tuple[float, float] | None:
    """(seed, image) variance of the primary robustness endpoint among the base model's
    replicate seeds (medians over attacks and architectures, or ``arch``'s attacks), or
    None where no architecture has two base seeds with that endpoint. Only the
    robustness claims use it: their pilot runs the base model on several seeds."""
    if claim not in ("regularization-helps", "elastic-most-consistent"):
        return None
    results, _ = grid_results(profile, "adversarial")
    found = []
    for own in {arch} if arch else {r.params.arch for r in results}:
        base = [r for r in results if r.params.arch == own and r.params.regularizer == "base"]
        for attack in ATTACKS:
            rows = [v for v in map(transfer_net(attack), base) if v is not None]
            if len(rows) >= 2:
                found.append(variance_components(np.stack(rows)))
    return tuple(np.median(found, axis=0).tolist()) if found else None


def _margin(verdict: Verdict | None, claim, profile: str, arch: str | None = None) -> float | None:
    """The judged family's mean margin, else the plan's margin for ``arch`` or the grid's
    architectures (their mean)."""
    if verdict is not None and verdict.margin is not None:
        return verdict.margin
    archs = {arch} if arch else {c.arch for c in load_grid("adversarial", profile)}
    return float(np.mean([margin(claim, arch) for arch in archs]))


def _images(profile: str, unit: str, claim: str) -> int:
    settings = load_profile(profile)
    if claim in ("density-falls", "regularized-converge-slower", "base-overfits"):
        return 1  # one value per seed
    if claim == "sparse-as-accurate":
        return settings.density.test_size
    if unit == "ssd":
        return settings.attribution.n_images
    return settings.adversarial.eval_size


def _grid_seeds(profile: str, claim: str, arch: str | None = None) -> int:
    experiment = "density" if claim in ("density-falls", "sparse-as-accurate") else "adversarial"
    cells = load_grid(experiment, profile)
    if experiment == "density":
        return sum(1 for c in cells if c.activity_l1 == 0.0)
    base = [c for c in cells if c.regularizer == "base" and arch in (None, c.arch)]
    return max(sum(1 for c in base if c.arch == own) for own in {c.arch for c in base})
