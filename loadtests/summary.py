"""The run's JSON summary (throughput, latency, audit) and the thresholds that set the exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.audit import AuditResult

CLAIM = "claim_pending_job"
COMPLETIONS = ("complete_job", "complete_jobs")


@dataclass(frozen=True)
class Thresholds:
    min_claims_per_s: float | None = None
    max_p99_ms: float | None = None
    max_error_rate: float | None = None

    def violations(self, summary: dict[str, Any]) -> list[str]:
        """Each threshold the run missed, as a sentence with the measured figure."""
        found = []
        claims_per_s = summary["throughput"]["claims_per_s"]
        p99 = summary["latency_ms"].get(CLAIM, {}).get("p99_ms")
        error_rate = summary["requests"]["error_rate"]
        if self.min_claims_per_s is not None and claims_per_s < self.min_claims_per_s:
            found.append(
                f"claims/s {claims_per_s:.1f} < --min-claims-per-s {self.min_claims_per_s}"
            )
        if self.max_p99_ms is not None and (p99 is None or p99 > self.max_p99_ms):
            measured = "no claim returned a job" if p99 is None else f"{p99:.3f} ms"
            found.append(f"claim p99 {measured} > --max-p99-ms {self.max_p99_ms}")
        if self.max_error_rate is not None and error_rate > self.max_error_rate:
            found.append(f"error rate {error_rate:.4f} > --max-error-rate {self.max_error_rate}")
        return found


def read_locust_stats(json_path: Path) -> list[dict[str, Any]]:
    """Locust's `--json-file` output (one entry per request name); [] when it was not written."""
    if not json_path.exists():
        return []
    entries: list[dict[str, Any]] = json.loads(json_path.read_text())
    return entries


def run_seconds(entries: list[dict[str, Any]]) -> float:
    """From the first request's start to the last request, over every entry."""
    starts = [e["start_time"] for e in entries if e.get("num_requests")]
    ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    if not starts or not ends:
        return 0.0
    return max(float(max(ends)) - float(min(starts)), 1e-3)


def build_summary(
    *,
    run: dict[str, Any],
    entries: list[dict[str, Any]],
    latency: dict[str, dict[str, Any]],
    audit: AuditResult,
    thresholds: Thresholds,
) -> dict[str, Any]:
    """The one JSON document a run leaves; `passed` is the audit and every threshold."""
    seconds = run_seconds(entries)
    requests = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    claimed = latency.get(CLAIM, {}).get("jobs", 0)
    completed = sum(latency.get(name, {}).get("jobs", 0) for name in COMPLETIONS)
    summary: dict[str, Any] = {
        "run": run,
        "duration_s": round(seconds, 3),
        "throughput": {
            "jobs_claimed": claimed,
            "jobs_completed": completed,
            "claims_per_s": round(claimed / seconds, 1) if seconds else 0.0,
            "completions_per_s": round(completed / seconds, 1) if seconds else 0.0,
        },
        "requests": {
            "total": requests,
            "failures": failures,
            "error_rate": round(failures / requests, 6) if requests else 0.0,
            "by_name": {
                e["name"]: {"requests": e["num_requests"], "failures": e["num_failures"]}
                for e in entries
            },
        },
        "latency_ms": latency,
        "audit": audit.to_json(),
    }
    violations = thresholds.violations(summary)
    summary["thresholds"] = {
        "min_claims_per_s": thresholds.min_claims_per_s,
        "max_p99_ms": thresholds.max_p99_ms,
        "max_error_rate": thresholds.max_error_rate,
        "violations": violations,
    }
    if run.get("locust_exit_code", 0) != 0:
        violations.append(f"Locust exited with code {run['locust_exit_code']} (see its log)")
    summary["passed"] = audit.passed and not violations
    return summary


def print_summary(summary: dict[str, Any], path: Path, say: Callable[[str], None]) -> None:
    """The summary as a few console lines."""
    throughput = summary["throughput"]
    latency = summary["latency_ms"]
    audit = summary["audit"]
    say(
        f"load: {throughput['jobs_claimed']:,} jobs claimed, {throughput['jobs_completed']:,} "
        f"completed in {summary['duration_s']} s: {throughput['claims_per_s']:,} claims/s"
    )
    for name, figures in latency.items():
        say(
            f"  {name:<28} calls {figures['calls']:>8,}  p50 {figures['p50_ms']:8.3f} ms  "
            f"p95 {figures['p95_ms']:8.3f} ms  p99 {figures['p99_ms']:8.3f} ms"
        )
    verdict = "passed" if audit["passed"] else "FAILED: " + "; ".join(audit["problems"])
    say(f"audit: {audit['seeded']:,} seeded, {audit['completed_once']:,} completed once; {verdict}")
    thresholds = summary["thresholds"]
    for violation in thresholds["violations"]:
        say(f"threshold missed: {violation}")
    say(f"load: {'PASSED' if summary['passed'] else 'FAILED'}; summary {path}")
