"""The six target ratios of `bench-claim` (issue 21): each a figure over its baseline measured in
the same repetition; the median and the min-max over repetitions, as a rich table or JSON."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    figure: str
    bound: float
    at_least: bool  # True: the ratio must be >= bound; False: <= bound

    def holds(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def describe(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}"


TARGETS = (
    Target(
        "function_overhead",
        "claim + complete through the functions / the same statements bare (pgbench, 16 clients)",
        0.8,
        True,
    ),
    Target(
        "function_overhead_1_client",
        "the same, one pgbench client: no client loses a candidate to another (no retries)",
        0.8,
        True,
    ),
    Target(
        "paced_p99_ratio",
        "claim call p99 / single-row UPDATE p99, 16 clients paced at 1/2 the claim's rate",
        2.0,
        False,
    ),
    Target(
        "paced_p99_own_pace_ratio",
        "the same claim p99 / UPDATE p99 paced at 1/2 the UPDATE's own saturated rate (16"
        " clients): each statement at equal utilisation (proposed in place of the one above)",
        2.0,
        False,
    ),
    Target(
        "batch10_vs_pgqueuer",
        "batch 10, 4 threads, each batch's complete_jobs and the next claim in one statement"
        " (the workers' path) / pgqueuer",
        2.0,
        True,
    ),
    Target(
        "batch10_apart_vs_pgqueuer",
        "the same with the claim and complete_jobs apart (two commits a batch) / pgqueuer",
        2.0,
        True,
    ),
    Target(
        "batch100_history_vs_update",
        "batch 100 + complete_jobs (one statement with the next claim), 4 threads, beside the"
        " completed history / UPDATE limit",
        4.0,
        True,
    ),
    Target(
        "batch100_fresh_vs_update",
        "batch 100 + complete_jobs (one statement with the next claim), 4 threads, fresh table"
        " / UPDATE limit",
        4.0,
        True,
    ),
    Target("batch100_32_vs_4", "batch 100: 32 threads / 4 threads (fresh table)", 0.95, True),
    Target(
        "locust_vs_direct",
        "Locust ClaimUser jobs/s / direct threads, same concurrency and batch",
        0.8,
        True,
    ),
)
KEYS = tuple(target.key for target in TARGETS)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


@dataclass
class RatioTable:
    """Per ratio, one value per repetition; the machine's load beside each repetition."""

    values: dict[str, list[float]] = field(default_factory=lambda: {key: [] for key in KEYS})
    loads: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=lambda: {key: [] for key in KEYS})

    def add(self, key: str, numerator: float, denominator: float, detail: str) -> float:
        if key not in self.values:
            raise KeyError(f"unknown ratio {key!r}; known: {', '.join(KEYS)}")
        ratio = numerator / denominator if denominator > 0 else math.nan
        self.values[key].append(ratio)
        self.details[key].append(detail)
        return ratio

    def median(self, key: str) -> float:
        return statistics.median(self.values[key]) if self.values[key] else math.nan

    def as_json(self) -> dict[str, Any]:
        """The median ratios under their keys, with min, max and holds beside; JSON has no
        NaN, so a ratio that could not be measured is null."""
        out: dict[str, Any] = {key: _finite(self.median(key)) for key in KEYS}
        for target in TARGETS:
            got = self.values[target.key]
            out[f"{target.key}_min"] = _finite(min(got)) if got else None
            out[f"{target.key}_max"] = _finite(max(got)) if got else None
            out[f"{target.key}_holds"] = bool(got) and all(target.holds(v) for v in got)
        out["repetitions"] = len(self.loads)
        out["load_averages"] = list(self.loads)
        return out

    def render(self) -> str:
        """The table as rich renders it (plain text, no colour codes)."""
        from rich.console import Console  # noqa: PLC0415 - only when printing the table
        from rich.table import Table  # noqa: PLC0415

        table = Table(title=f"bench-claim targets ({len(self.loads)} repetition(s))")
        for column in ("ratio", "figure", "median", "min-max", "target", "holds every rep"):
            table.add_column(column)
        for target in TARGETS:
            got = self.values[target.key]
            span = f"{min(got):.2f}-{max(got):.2f}" if got else "-"
            holds = bool(got) and all(target.holds(v) for v in got)
            table.add_row(
                target.key,
                target.figure,
                f"{self.median(target.key):.2f}",
                span,
                target.describe(),
                "yes" if holds else "no",
            )
        console = Console(width=160, record=True, color_system=None, force_terminal=False)
        with console.capture() as capture:
            console.print(table)
            for number, load in enumerate(self.loads, 1):
                console.print(f"repetition {number}: load average {load}")
                for key in KEYS:
                    if len(self.details[key]) >= number:
                        console.print(f"  {key}: {self.details[key][number - 1]}")
        return capture.get()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
