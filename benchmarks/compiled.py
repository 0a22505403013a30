"""Does ``torch.compile`` pay for the study's training step on this device?

One epoch of our ``train`` per study architecture, eagerly and compiled (``compile:
true``), on the same images, after a warm-up epoch that pays the compilation; the
first compiled epoch's time is reported apart. The study adopts any exact speed-up of
at least ``ADOPT`` (compiling changes no arithmetic we rely on: same float32 ops).
"""

from __future__ import annotations

import time

import torch

from benchmarks.throughput import repeated
from paperlib.core.models import make_model
from paperlib.core.regularizers import make_penalty
from paperlib.core.train import penalized_cross_entropy, seed_everything, train

STUDY_ARCHS = ("vgg16", "resnet26")
ADOPT = 1.2  # the smallest speed-up worth a change of the study's settings


def bench_compile(
    device: torch.device, width: float, n: int, repeats: int, archs=STUDY_ARCHS
) -> list[dict]:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))
    rows = []
    for arch in archs:
        timings = {}
        for compiled in (False, True):
            seed_everything(0)
            model = make_model(arch, width)
            objective = penalized_cross_entropy(make_penalty("elastic", 1e-4))

            def epoch(model=model, objective=objective, compiled=compiled):
                train(
                    model,
                    (images, labels),
                    (images[:64], labels[:64]),
                    objective=objective,
                    epochs=1,
                    batch_size=64,
                    lr=0.05,
                    optimizer="sgd",
                    seed=0,
                    device=device,
                    augment=True,
                    compile=compiled,
                    progress=False,
                )

            start = time.perf_counter()
            epoch()  # pays the compilation
            first = time.perf_counter() - start
            timings[compiled] = (first, repeated(epoch, repeats)["median_s"])
        speedup = timings[False][1] / timings[True][1]
        rows.append(
            {
                "arch": arch,
                "width": width,
                "images": n,
                "eager_img_per_s": n / timings[False][1],
                "compiled_img_per_s": n / timings[True][1],
                "speedup": speedup,
                "first_compiled_epoch_s": timings[True][0],
                "adopted": speedup >= ADOPT,
            }
        )
    return rows
