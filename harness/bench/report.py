"""The benchmark's results: medians across repetitions, a Markdown table and a chart."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

LIMIT = "pgbench single-row UPDATE by primary key (8 clients)"


@dataclass
class Results:
    """Per case, one figure per repetition; the UPDATE limit of the same repetition."""

    rates: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ratios: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    p99_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add(self, case: str, rate: float, limit: float, p99_ms: float | None = None) -> None:
        if case not in self.order:
            self.order.append(case)
        self.rates[case].append(rate)
        self.ratios[case].append(rate / limit if limit else 0.0)
        if p99_ms is not None:
            self.p99_ms[case].append(p99_ms)

    def median(self, case: str) -> float:
        return statistics.median(self.rates[case]) if self.rates.get(case) else 0.0

    def median_ratio(self, case: str) -> float:
        return statistics.median(self.ratios[case]) if self.ratios.get(case) else 0.0

    def markdown(self) -> str:
        lines = [
            "| what | jobs/s (median) | x UPDATE limit | claim p99 ms | repetitions (jobs/s) "
            "| notes |",
            "|---|---:|---:|---:|---|---|",
        ]
        for case in self.order:
            p99 = f"{statistics.median(self.p99_ms[case]):.1f}" if self.p99_ms.get(case) else ""
            reps = " / ".join(f"{rate:,.0f}" for rate in self.rates[case])
            lines.append(
                f"| {case} | {self.median(case):,.0f} | {self.median_ratio(case):.2f} | {p99} "
                f"| {reps} | {self.notes.get(case, '')} |"
            )
        return "\n".join(lines)


def write_chart(
    results: Results,
    path: Path,
    concurrency: dict[str, dict[int, str]],
    peers: list[str],
    growth: list[str],
) -> Path:
    """claims/s against concurrency (ours beside the peers) and against table size, as a PNG."""
    import matplotlib  # noqa: PLC0415 - optional (bench extra), and slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for label, points in concurrency.items():
        xs = sorted(points)
        left.plot(xs, [results.median(points[x]) for x in xs], marker="o", label=label)
    for case, style, color in zip(
        [LIMIT, *peers], [":", "-.", "--"], ["grey", "tab:red", "tab:purple"], strict=False
    ):
        left.axhline(results.median(case), linestyle=style, color=color, label=case)
    left.set_xscale("log", base=2)
    left.set_xticks([1, 4, 16, 32], ["1", "4", "16", "32"])
    left.set_xlabel("concurrent claimers (threads)")
    left.set_ylabel("jobs claimed and completed per second (median)")
    left.set_title("claims/s against concurrency")
    left.legend(fontsize=7)
    names = [case.split(":")[0].replace(" pending beside ", "\nbeside ") for case in growth]
    right.bar(names, [results.median(case) for case in growth], color="tab:blue")
    right.axhline(results.median(LIMIT), linestyle=":", color="grey", label=LIMIT)
    right.set_ylabel("claims/s, 16 threads, one job per claim (median)")
    right.set_title("claims/s against table size")
    right.tick_params(axis="x", labelsize=7)
    right.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
