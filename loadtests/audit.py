"""The run's audit: no job claimed twice while its lease was live, every seeded job completed
exactly once. A run that loses or duplicates a job fails, whatever its speed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from loadtests.sql import query


@dataclass(frozen=True)
class AuditResult:
    seeded: int
    completed_once: int
    completed_twice: int
    not_completed: int
    completed_unrecorded: int
    double_claims: list[dict[str, Any]] = field(default_factory=list)
    processes_expected: int = 0
    processes_flushed: int = 0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.double_claims:
            first = self.double_claims[0]
            found.append(
                f"{len(self.double_claims)} job(s) claimed twice while leased, e.g. "
                f"{first['job_id']} by {', '.join(first['workers'])}"
            )
        if self.completed_twice:
            found.append(f"{self.completed_twice} job(s) completed more than once")
        if self.not_completed:
            found.append(
                f"{self.not_completed} of {self.seeded} seeded job(s) not completed (lost, or "
                "the run ended before the queue drained: raise --run-time or lower --seed-jobs)"
            )
        if self.processes_flushed < self.processes_expected:
            found.append(
                f"only {self.processes_flushed} of {self.processes_expected} Locust process(es) "
                "wrote their claim records (see their logs): the audit is incomplete"
            )
        if self.completed_unrecorded:
            found.append(f"{self.completed_unrecorded} job(s) completed by no recorded claim")
        return found

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "double_claims": [
                {**claim, "job_id": str(claim["job_id"])} for claim in self.double_claims
            ],
            "passed": self.passed,
            "problems": self.problems,
        }


def create_audit_tables(conn: psycopg.Connection[Any]) -> None:
    conn.execute(query("create_audit_tables"))


def seed_jobs(conn: psycopg.Connection[Any], run_id: str, count: int) -> int:
    """Pre-fill `count` load_probe jobs tagged with run_id, through ops.queue_job."""
    row = conn.execute(query("seed_jobs"), {"run_id": run_id, "count": count}).fetchone()
    return int(row[0]) if row else 0


def flushed_processes(conn: psycopg.Connection[Any], run_id: str) -> int:
    row = conn.execute(query("flushed_processes"), {"run_id": run_id}).fetchone()
    return int(row[0]) if row else 0


def audit_run(conn: psycopg.Connection[Any], run_id: str, processes: int = 0) -> AuditResult:
    """The audit of run_id; `processes` is how many Locust processes ran users."""
    params = {"run_id": run_id}
    with conn.cursor(row_factory=dict_row) as cursor:
        doubles = cursor.execute(query("double_claims"), params).fetchall()
        outcome = cursor.execute(query("seeded_outcome"), params).fetchone() or {}
    return AuditResult(
        seeded=int(outcome.get("seeded") or 0),
        completed_once=int(outcome.get("completed_once") or 0),
        completed_twice=int(outcome.get("completed_twice") or 0),
        not_completed=int(outcome.get("not_completed") or 0),
        completed_unrecorded=int(outcome.get("completed_unrecorded") or 0),
        double_claims=[dict(row) for row in doubles],
        processes_expected=processes,
        processes_flushed=flushed_processes(conn, run_id),
    )


def operation_latency(conn: psycopg.Connection[Any], run_id: str) -> dict[str, dict[str, Any]]:
    """Per operation: calls, jobs, failures and exact percentiles in milliseconds."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(query("operation_latency"), {"run_id": run_id}).fetchall()
    return {
        row["name"]: {
            "calls": int(row["calls"]),
            "jobs": int(row["jobs"] or 0),
            "failures": int(row["failures"]),
            **{
                f"{key.removesuffix('_us')}_ms": round(int(row[key]) / 1000.0, 3)
                for key in ("p50_us", "p95_us", "p99_us", "max_us")
            },
        }
        for row in rows
    }
