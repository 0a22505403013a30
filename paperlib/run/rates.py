"""Where each rate of a plan comes from: measured (by ``make bench``, on which device) or
assumed (and why).

A stage is priced at the rate of the work it does: its architecture, its kind of pass
(``method``: the training loop, an attack's steps, occlusion's or Grad-CAM's passes)
and its precision (``bf16`` under CUDA's autocast, or ``fp32``: DeepFool, occlusion,
Grad-CAM and every verdict pass, which run in float32 without TF32). ``make bench``
writes those rates per device to ``benchmarks/results/*.json``. A rate is **measured**
only where a report measured that architecture, method and precision on the device
planned. Every other rate is **assumed**, and its basis says from what:

- another GPU's measurement, scaled by the two devices' memory-bandwidth ratio: these
  networks at these batch sizes are bandwidth-bound (ResNet-50's bf16 training reaches
  12 % of the tensor-core peak on an H200);
- a float32 rate measured while cuDNN still ran float32 convolutions in TF32 (every
  report row without a ``tf32`` field), capped at ``FP32_UTILISATION`` of the device's
  float32 peak;
- another method of the same architecture (``PRICED_AS``, or the training loop for an
  attack that was not measured), or the family's architecture;
- a share of the device's data-sheet peak where nothing was measured.

On a CPU everything runs in float32, and only the CPU's own reports count.
"""

from __future__ import annotations

from dataclasses import dataclass

from paperlib.core.cost import BF16_PEAK, FP32_PEAK, MEMORY_BANDWIDTH, gpu_key
from paperlib.core.registry import PAPER_COUNTERPART

DEFAULT_UTILISATION = 0.35  # of the bf16 peak, where no GPU run was measured
# float32 without TF32 runs on CUDA cores, whose peak is a fifteenth of the tensor
# cores' bf16 one; large convolutions reach about half of it (an assumption: no report
# measured float32 with TF32 off yet).
FP32_UTILISATION = 0.5
# Which benchmark section and method measured each kind of pass.
MEASURED_AS = {
    "training": ("utilisation", None),
    "pgd": ("attacks", "pgd"),
    "apgd": ("attacks", "apgd-ce"),
    "occlusion": ("attacks", "occlusion"),
    "gradcam": ("attacks", "gradcam"),
}
# Kinds of pass never benchmarked on their own, priced as a measured one, and why.
PRICED_AS = {
    "deepfool": ("pgd", "DeepFool's steps are gradient passes over batches, as PGD's"),
    "forward": ("occlusion", "batched forward passes, as occlusion's"),
}


class PlanError(ValueError):
    """A plan that cannot be made: no measured rate, or an unknown device."""


@dataclass(frozen=True)
class Rate:
    flop_per_s: float
    label: str  # "measured" or "assumed"
    basis: str  # where it was measured, or why it is assumed


def report_device(name: str) -> str:
    """A report's device as a plan names it: a data-sheet key (``h200``), or ``cpu``."""
    return "cpu" if name.lower().startswith("cpu") else (gpu_key(name) or name)


def _rows(reports: dict, section: str, method: str | None, arch: str, precision: str):
    """(row, its report's device name) for every row measuring this."""
    return [
        (row, report["device"])
        for report in reports.values()
        for row in report.get(section, [])
        if row["arch"] == arch
        and row.get("method") == method
        and row.get("precision", precision) == precision
    ]


def _find(reports, method, arch, precision, device, batch_size):
    """The measured row nearest to what the stage does, with its report's device: this
    device before another GPU (a CPU plan takes the CPU's rows only), the stage's batch
    size before another, then the fastest."""
    section, name = MEASURED_AS[method]
    here = device or "cpu"
    rows = [
        (row, measured_on)
        for row, measured_on in _rows(reports, section, name, arch, precision)
        if (report_device(measured_on) == "cpu") == (here == "cpu")
    ]
    if not rows:
        return None
    return max(
        rows,
        key=lambda rd: (
            report_device(rd[1]) == here,
            rd[0].get("batch_size", batch_size) == batch_size,
            rd[0]["tflop_per_s"],
        ),
    )


def stage_rate(
    arch: str,
    method: str,
    precision: str,
    device: str | None,
    reports: dict[str, dict],
    batch_size: int | None = None,
) -> Rate:
    """FLOP/s of ``method`` passes of ``arch`` in ``precision`` on ``device`` (None: this
    machine's CPU, in float32), and whether that was measured or assumed, and how."""
    if device is not None and device not in BF16_PEAK:
        raise PlanError(f"unknown device {device!r}; choose one of {sorted(BF16_PEAK)}")
    precision = precision if device else "fp32"
    notes = []
    if method in PRICED_AS:
        method, why = PRICED_AS[method]
        notes.append(f"priced as {method}: {why}")
    # The same kind of pass before the training loop's, the architecture before its
    # family's.
    candidates = [
        (kind, member)
        for kind in dict.fromkeys([method, "training"])
        for member in dict.fromkeys([arch, PAPER_COUNTERPART.get(arch, arch)])
    ]
    for kind, member in candidates:
        match = _find(reports, kind, member, precision, device, batch_size)
        if match:
            break
    else:
        return _unmeasured(arch, precision, device, notes)
    row, measured_on = match
    if kind != method:
        notes.append(f"no {method} rate measured for {member}: its training loop's")
    if member != arch:
        notes.append(f"{arch} not measured: {member}'s rate (the same blocks)")
    if batch_size is not None and row.get("batch_size", batch_size) != batch_size:
        notes.append(f"measured at batch {row['batch_size']}, the stage runs {batch_size}")
    rate = row["tflop_per_s"] * 1e12
    where = f"make bench on {measured_on}: {member} {kind} {precision}"
    where += f", batch {row['batch_size']}" if "batch_size" in row else ""
    source = report_device(measured_on)
    if device and source != device:
        ratio = MEMORY_BANDWIDTH[device] / MEMORY_BANDWIDTH[source]
        rate *= ratio
        notes.append(
            f"measured on {source.upper()}, times {ratio:.2f}, the {device.upper()}/"
            f"{source.upper()} memory-bandwidth ratio ({MEMORY_BANDWIDTH[device] / 1e12:.2f} / "
            f"{MEMORY_BANDWIDTH[source] / 1e12:.2f} TB/s): these networks are bandwidth-bound"
        )
    if device and precision == "fp32" and row.get("tf32", True):
        cap = FP32_UTILISATION * FP32_PEAK[device]
        rate = min(rate, cap)
        notes.append(
            "measured with TF32 convolutions (cuDNN's default then); without TF32 at most "
            f"{FP32_UTILISATION:.0%} of the {device.upper()}'s float32 peak ({cap / 1e12:.1f} "
            "TFLOP/s)"
        )
    if notes:
        return Rate(rate, "assumed", f"{'; '.join(notes)} (from {where})")
    return Rate(rate, "measured", where)


def _unmeasured(arch: str, precision: str, device: str | None, notes: list[str]) -> Rate:
    if device is None:
        raise PlanError(
            f"no training rate for {arch} measured on this machine yet: run `make bench` first, "
            "or plan for a named GPU with --device"
        )
    share, peak = (
        (FP32_UTILISATION, FP32_PEAK[device])
        if precision == "fp32"
        else (DEFAULT_UTILISATION, BF16_PEAK[device])
    )
    notes.append(f"nothing measured: {share:.0%} of the {device.upper()}'s {precision} peak")
    return Rate(share * peak, "assumed", "; ".join(notes))
