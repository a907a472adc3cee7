"""The smoke suite's command-line options: the target (SPEC §5), the canary, thresholds, output."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.targets import add_target_arguments
from smoke.context import Thresholds

DEFAULT_CHECK_TIMEOUT = 15.0  # seconds for one check (the canary gets its own budget on top)
DEFAULT_DEADLINE = 120.0  # seconds for the whole run, the canary's budget added when asked


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return number


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return int(value)


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    """The target options (SPEC §5), the canary, thresholds and outputs."""
    add_target_arguments(parser.add_argument_group("target (default: a local reference stack)"))
    canary = parser.add_argument_group("canary (writes; off by default)")
    canary.add_argument("--canary", action="store_true", help="have a worker complete a job")
    canary.add_argument(
        "--canary-csv", action="store_true", help="also upload a one-row CSV (implies --canary)"
    )
    limits = parser.add_argument_group("thresholds")
    default = Thresholds()
    seconds, minutes, count = ("SECONDS", _positive), ("MINUTES", _positive), ("N", _count)
    for flag, (unit, kind), value, text in (
        ("--latency-budget", seconds, default.latency_budget, "for GET / and /health"),
        (
            "--lock-timeout",
            minutes,
            default.lock_timeout / 60,
            "a processing lease this old is stuck",
        ),
        (
            "--max-pending-age",
            minutes,
            default.max_pending_age / 60,
            "a due job may wait this long",
        ),
        (
            "--max-dead-letters",
            count,
            default.max_dead_letters,
            "dead letters allowed in the window",
        ),
        (
            "--dead-letter-window",
            ("HOURS", _positive),
            default.dead_letter_window / 3600,
            "dead-letter window",
        ),
        ("--heartbeat-max-age", seconds, default.heartbeat_max_age, "a heartbeat older is stale"),
        (
            "--max-starts",
            count,
            default.max_starts,
            "starts of one worker type allowed in the window",
        ),
        ("--crash-window", minutes, default.crash_window / 60, "the crash-loop window"),
        ("--canary-timeout", seconds, default.canary_timeout, "for a worker to finish the canary"),
        ("--check-timeout", seconds, DEFAULT_CHECK_TIMEOUT, "for one check"),
        ("--deadline", seconds, None, f"for the whole run ({DEFAULT_DEADLINE:g} s, +canary)"),
    ):
        shown = "" if value is None else f" (default {value:g})"
        limits.add_argument(flag, type=kind, default=value, metavar=unit, help=text + shown)
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="JSON to PATH, or to stdout alone"
    )
    output.add_argument("--junit", type=Path, metavar="PATH", help="JUnit XML to PATH")


def thresholds_from(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        latency_budget=args.latency_budget,
        lock_timeout=args.lock_timeout * 60,
        max_pending_age=args.max_pending_age * 60,
        max_dead_letters=args.max_dead_letters,
        dead_letter_window=args.dead_letter_window * 3600,
        heartbeat_max_age=args.heartbeat_max_age,
        max_starts=args.max_starts,
        crash_window=args.crash_window * 60,
        canary_timeout=args.canary_timeout,
    )
