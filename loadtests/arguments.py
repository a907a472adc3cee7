"""The `load` subcommand's options; the target options come from harness.targets."""

from __future__ import annotations

import argparse
from pathlib import Path

from reference.jobqueue import MAX_BATCH_SIZE

SCENARIOS = {
    "claim": ("ClaimUser",),
    "enqueue": ("EnqueueUser",),
    "intake": ("IntakeUser",),
    "mixed": ("ClaimUser", "EnqueueUser", "IntakeUser"),
}


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a whole number of at least 1")
    return number


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def _batch_size(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"{value}: a claim takes 1 to {MAX_BATCH_SIZE} jobs")
    return number


def _rate(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value}: an error rate is a fraction from 0 to 1")
    return number


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The `load` subcommand's options (the target options are added by the caller)."""
    parser.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        default="claim",
        help="claim (ClaimUser, default), enqueue, intake, or mixed (all three)",
    )
    parser.add_argument("--users", type=_positive_int, default=8, help="concurrent users")
    parser.add_argument(
        "--spawn-rate", type=float, help="users started per second (default: all at once)"
    )
    parser.add_argument(
        "--run-time",
        type=_positive_int,
        default=60,
        metavar="SECONDS",
        help="stop after SECONDS (a claim run stops earlier once drained)",
    )
    parser.add_argument(
        "--seed-jobs",
        type=_count,
        default=2_000,
        help="load_probe jobs pre-filled for ClaimUser (default 2000)",
    )
    parser.add_argument(
        "--claim-batch-size",
        type=_batch_size,
        default=1,
        help="jobs per claim; above 1 they are completed with complete_jobs",
    )
    parser.add_argument(
        "--workers",
        type=_count,
        default=0,
        help="distributed: a Locust master and this many worker processes here",
    )
    parser.add_argument(
        "--remote-workers",
        type=_count,
        default=0,
        help="distributed: also wait for this many workers from other machines",
    )
    parser.add_argument(
        "--master-bind-host",
        default="127.0.0.1",
        help="where the master listens for workers (0.0.0.0 for other machines)",
    )
    parser.add_argument("--master-port", type=_count, default=0, help="master port (0: a free one)")
    parser.add_argument("--out", type=Path, help="report folder (default .dragonfly/load/<run id>)")
    parser.add_argument("--min-claims-per-s", type=float, help="fail below this many claims/s")
    parser.add_argument("--max-p99-ms", type=float, help="fail when the claim p99 is above this")
    parser.add_argument(
        "--max-error-rate", type=_rate, help="fail above this failed-request fraction"
    )
