"""Command line: ``python -m paperlib grid|book|plan|gpu-check ...`` (also installed as
``paperlib``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from paperlib.core.cost import BF16_PEAK
from paperlib.core.data import DataError
from paperlib.core.registry import EXECUTORS, GRID_JOBS
from paperlib.core.settings import ConfigError
from paperlib.run.profiles import available_profiles
from paperlib.run.rates import PlanError

INTERRUPTED = 130  # the shell's exit status for a command stopped by Ctrl-C


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.command == "grid":
        for flag, least in (("slurm_gpus", 0), ("slurm_cpus", 1), ("slurm_time", 1)):
            if getattr(args, flag) < least:
                name = "--" + flag.replace("_", "-")
                parser.error(f"{name} must be at least {least}, got {getattr(args, flag)}")
    started = time.perf_counter()
    try:
        if args.command == "grid":
            return _grid(args)
        if args.command == "plan":
            return _plan(args)
        if args.command == "gpu-check":
            from paperlib.run.gpu_check import gpu_check  # here: it loads torch's models

            return gpu_check(Path(args.out), dry_run=args.dry_run, budget_s=args.budget)
        return _book(args)
    except (ConfigError, DataError, PlanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        print(f"{args.command} took {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paperlib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_grid(commands)
    book = commands.add_parser("book", help="assemble book/generated/ from a profile's runs")
    book.add_argument("--profile", default="cpu", help=f"one of {available_profiles()}")
    _add_plan(commands)
    _add_gpu_check(commands)
    return parser


def _add_grid(commands) -> None:
    grid = commands.add_parser("grid", help="run an experiment's grid with papermill")
    grid.add_argument("--profile", default="cpu", help=f"one of {available_profiles()}")
    grid.add_argument(
        "--experiment",
        default="all",
        choices=["all", *GRID_JOBS],
        help="one experiment or check, or all of them in order (default)",
    )
    grid.add_argument("--data", help="local CIFAR-10 copy (default: $PAPERLIB_DATA or the profile)")
    grid.add_argument(
        "--cells", nargs="+", metavar="CELL", help="run only these cells of the experiment's grid"
    )
    grid.add_argument(
        "--workers",
        type=int,
        default=None,
        help=(
            "cells run at once (default: the profile's grid.workers_per_gpu on each visible"
            " GPU, else its grid.workers, else 1; on Slurm, all)"
        ),
    )
    grid.add_argument(
        "--executor",
        default="local",
        choices=EXECUTORS,
        help="run cells here, or as a Slurm job array through submitit",
    )
    slurm = grid.add_argument_group("Slurm (with --executor slurm; one task per cell)")
    slurm.add_argument("--slurm-partition", help="partition (default: the cluster's default)")
    slurm.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per task (default 1)")
    slurm.add_argument("--slurm-cpus", type=int, default=8, help="CPUs per task (default 8)")
    slurm.add_argument(
        "--slurm-time", type=int, default=240, help="minutes before Slurm ends a task (default 240)"
    )


def _add_plan(commands) -> None:
    plan = commands.add_parser("plan", help="predict a profile's FLOPs and time before running it")
    plan.add_argument("--profile", default="cpu", help=f"one of {available_profiles()}")
    plan.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="plan the power for this many paired seeds per arm (default: the grid's)",
    )
    plan.add_argument(
        "--arch",
        default=None,
        help="plan the power of one architecture's claims alone, from its own results "
        "(default: the architectures pooled, as the leading verdicts judge them)",
    )
    plan.add_argument(
        "--device",
        choices=sorted(BF16_PEAK),
        help="a GPU to plan for (default: this machine, at the rate make bench measured here)",
    )
    plan.add_argument(
        "--benchmarks",
        default="benchmarks/results",
        help="the folder of make bench's reports, whose measured rates the plan uses "
        "(default: benchmarks/results)",
    )


def _add_gpu_check(commands) -> None:
    check = commands.add_parser(
        "gpu-check",
        help="every stage on the GPU at smoke and paper sizes: seconds and peak memory "
        "(a dry run on the CPU without one); exits non-zero on any failure",
    )
    check.add_argument(
        "--dry-run", action="store_true", help="run on the CPU at tiny sizes, even with a GPU"
    )
    check.add_argument(
        "--out",
        default="benchmarks/results/gpu-check",
        help="where the report goes (default: benchmarks/results/gpu-check)",
    )
    check.add_argument(
        "--budget", type=float, default=300.0, help="seconds before no stage starts (default 300)"
    )


def _grid(args: argparse.Namespace) -> int:
    from paperlib.run.cells import summarize
    from paperlib.run.grid import run_grid
    from paperlib.run.slurm import SlurmOptions
    from paperlib.run.workers import drained_by_sigusr1, stopped_by_signals

    slurm = SlurmOptions(
        partition=args.slurm_partition,
        gpus_per_task=args.slurm_gpus,
        cpus_per_task=args.slurm_cpus,
        timeout_min=args.slurm_time,
    )
    experiments = list(GRID_JOBS) if args.experiment == "all" else [args.experiment]
    failed = False
    # One drain request for the whole command: it also keeps the next experiment from
    # starting, when it came while the last cells of one were in flight.
    with drained_by_sigusr1() as draining:
        for index, experiment in enumerate(experiments):
            with stopped_by_signals():
                outcomes = run_grid(
                    args.profile,
                    experiment,
                    data_path=args.data,
                    only=args.cells,
                    workers=args.workers,
                    executor=args.executor,
                    slurm=slurm,
                    draining=draining,
                )
            print(f"{experiment}: {summarize(outcomes)}")
            failed |= any(o.status == "failed" for o in outcomes)
            if any(o.status == "interrupted" for o in outcomes):
                print("interrupted: finished cells are kept; run the same command to resume")
                return INTERRUPTED
            left = any(o.status == "not started" for o in outcomes) or index + 1 < len(experiments)
            if draining.is_set() and left:
                print("drained: the cells in flight finished; run the same command to resume")
                return INTERRUPTED
    return 1 if failed else 0


def _plan(args: argparse.Namespace) -> int:
    from paperlib.run.plan import format_plan, load_recipes, load_reports

    folder = Path(args.benchmarks)
    print(format_plan(args.profile, args.device, load_reports(folder), load_recipes(folder)))
    from paperlib.report.power import design_power  # here: it loads the report layer

    with pd.option_context("display.width", 200, "display.max_columns", None):
        print("\nPower: each claim's minimum detectable effect for this design")
        if args.arch:
            print(f"(on {args.arch} alone)")
        print(design_power(args.profile, args.seeds, args.arch).to_string(index=False))
    return 0


def _book(args: argparse.Namespace) -> int:
    from paperlib.report.book import prepare_book

    prepare_book(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
