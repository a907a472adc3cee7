"""`dragonfly-harness load` end to end: Locust as its own processes, on loopback, bounded runs.

Each run drains a small seeded queue (the master stops it once drained), so it takes seconds;
--run-time is only the upper bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[Any]
COMMAND_TIMEOUT = 180  # seconds: a run is bounded by --run-time plus Locust's shutdown
# A claim with neither FOR UPDATE SKIP LOCKED nor a status re-check: two claimers that read the
# same head of the queue both take it (the second waits for the first's row lock, then updates
# the row again). The audit must catch what this does.
# The form the queue client calls (with the lease length), without its row lock.
BROKEN_CLAIM = """
CREATE OR REPLACE FUNCTION ops.claim_pending_job(
    job_types text[], worker_id text, batch_size integer, lock_timeout interval
) RETURNS SETOF ops.job_queue LANGUAGE sql AS $$
    UPDATE ops.job_queue AS q
    SET status = 'processing', locked_at = now(), locked_by = claim_pending_job.worker_id,
        lease_expires_at = now() + claim_pending_job.lock_timeout, attempts = q.attempts + 1
    FROM (SELECT p.id FROM ops.job_queue AS p
          WHERE p.status = 'pending' AND p.job_type = ANY (claim_pending_job.job_types)
          ORDER BY p.priority DESC, p.run_at, p.id
          LIMIT claim_pending_job.batch_size) AS picked
    WHERE q.id = picked.id
    RETURNING q.*;
$$;
"""


def clean_environment() -> dict[str, str]:
    """This process's environment without any target variables a developer may have set."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DRAGONFLY_TARGET_", "SUPABASE_", "DRAGONFLY_LOAD_"))
        and name not in ("DATABASE_URL", "DRAGONFLY_API_KEY")
    }


def run_load(out: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "load", "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=clean_environment(),
        check=False,
    )
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return result, summary


def against(database_url: str) -> list[str]:
    return ["--db-url", database_url, "--allow-writes"]


def test_local_run_passes_its_audit_and_reports(tmp_path: Path) -> None:
    result, summary = run_load(
        tmp_path,
        *("--users", "4", "--run-time", "30", "--seed-jobs", "800"),
        *("--min-claims-per-s", "1", "--max-p99-ms", "5000", "--max-error-rate", "0.01"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting the local reference stack" in result.stdout
    assert "requests " in result.stdout  # the live progress line
    assert "postgresql://" not in result.stdout + result.stderr  # no URL, so no password
    assert summary["passed"] is True
    audit = summary["audit"]
    assert audit["passed"] is True
    assert (audit["seeded"], audit["completed_once"], audit["not_completed"]) == (800, 800, 0)
    assert audit["double_claims"] == []
    throughput = summary["throughput"]
    assert throughput["jobs_claimed"] == throughput["jobs_completed"] == 800
    assert throughput["claims_per_s"] > 0
    claim = summary["latency_ms"]["claim_pending_job"]
    assert claim["calls"] == 800
    assert 0 < claim["p50_ms"] <= claim["p95_ms"] <= claim["p99_ms"] <= claim["max_ms"]
    assert summary["requests"]["by_name"]["complete_job"] == {"requests": 800, "failures": 0}
    assert summary["requests"]["error_rate"] == 0
    assert summary["thresholds"]["violations"] == []
    for report in ("report.html", "locust_stats.csv", "locust.json"):
        assert (tmp_path / report).stat().st_size > 0, report


def test_the_audit_catches_a_broken_claim(tmp_path: Path, database_url: str, db_conn: Conn) -> None:
    db_conn.execute(BROKEN_CLAIM)

    result, summary = run_load(
        tmp_path, *against(database_url), "--users", "8", "--run-time", "30", "--seed-jobs", "400"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert summary["passed"] is False
    doubles = summary["audit"]["double_claims"]
    assert doubles, summary["audit"]
    assert len(doubles[0]["workers"]) >= 2
    assert "claimed twice while leased" in result.stdout
    assert "FAILED" in result.stdout
    # The second holder's completion was refused by the fence: Locust counted it as a failure.
    assert summary["requests"]["by_name"]["lease lost"]["failures"] > 0


def test_thresholds_set_the_exit_code(tmp_path: Path, database_url: str) -> None:
    result, summary = run_load(
        tmp_path,
        *against(database_url),
        *("--users", "2", "--run-time", "30", "--seed-jobs", "200"),
        *("--min-claims-per-s", "1000000000", "--max-p99-ms", "0.001"),
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert summary["audit"]["passed"] is True  # only the thresholds failed the run
    violations = summary["thresholds"]["violations"]
    assert any(v.startswith("claims/s ") and "--min-claims-per-s" in v for v in violations)
    assert any(v.startswith("claim p99 ") and "--max-p99-ms 0.001" in v for v in violations)
    assert "threshold missed: claims/s" in result.stdout


def test_distributed_run_with_a_master_and_two_workers(tmp_path: Path, database_url: str) -> None:
    result, summary = run_load(
        tmp_path,
        *against(database_url),
        *("--workers", "2", "--users", "4", "--run-time", "60", "--seed-jobs", "600"),
        "--claim-batch-size",
        "10",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["run"]["local_workers"] == 2
    assert summary["audit"]["passed"] is True
    assert summary["audit"]["completed_once"] == 600
    assert summary["latency_ms"]["complete_jobs"]["jobs"] == 600
    for number in (1, 2):
        log = (tmp_path / f"locust-worker-{number}.log").read_text()
        assert "recorded " in log, log[-2000:]  # each worker claimed and flushed its records
    master = (tmp_path / "locust-master.log").read_text()
    assert "is completed: stopping" in master


def test_a_named_target_is_read_only_without_allow_writes(
    tmp_path: Path, database_url: str
) -> None:
    result, summary = run_load(tmp_path, "--db-url", database_url, "--seed-jobs", "10")

    assert result.returncode == 2
    assert "--allow-writes" in result.stderr
    password = psycopg.conninfo.conninfo_to_dict(database_url).get("password")
    assert password
    assert str(password) not in result.stdout + result.stderr
    assert summary == {}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--claim-batch-size", "0", "a claim takes 1 to 1000 jobs"),
        ("--max-error-rate", "2", "an error rate is a fraction from 0 to 1"),
        ("--users", "0", "must be a whole number of at least 1"),
    ],
)
def test_bad_options_say_what_is_wrong(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    result, _ = run_load(tmp_path, option, value)

    assert result.returncode == 2
    assert message in result.stderr
