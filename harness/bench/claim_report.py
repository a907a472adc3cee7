"""The older cases of `bench-claim`: their table, chart and raw figures in --out."""

from __future__ import annotations

import json
from pathlib import Path

from harness.bench import growth
from harness.bench.cases import BATCH, COMBINED, PGQUEUER, PROCRASTINATE, SINGLE
from harness.bench.report import Results, write_chart


def write_report(results: Results, double_claims: int, lost: int, out: Path) -> int:
    """The older cases' Markdown table, chart and JSON in `out`, and the table printed."""
    table = results.markdown()
    out.mkdir(parents=True, exist_ok=True)
    chart = write_chart(
        results,
        out / "claims.png",
        concurrency={
            "ours, one job per claim": dict(SINGLE.items()),
            "ours, complete_job_and_claim": dict(COMBINED.items()),
            "ours, batch of 10": {n: BATCH[(10, n)] for n in (4, 32)},
            "ours, batch of 100": {n: BATCH[(100, n)] for n in (4, 32)},
        },
        peers=[PGQUEUER, PROCRASTINATE],
        growth=[case.name for case in growth.CASES],
    )
    audit = (
        f"double claims: {double_claims}; claimed but not completed: {lost} "
        "(over every drain of our client, every repetition)"
    )
    (out / "results.md").write_text(table + "\n\n" + audit + "\n")
    raw = {
        case: {
            "jobs_per_s": results.rates[case],
            "x_update_limit": results.ratios[case],
            "claim_p99_ms": results.p99_ms.get(case, []),
            "note": results.notes.get(case, ""),
        }
        for case in results.order
    }
    (out / "results.json").write_text(json.dumps(raw, indent=2) + "\n")
    print(table)
    print(audit)
    print(f"\nchart: {chart}\ntable: {out / 'results.md'}")
    return 0
