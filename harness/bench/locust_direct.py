"""Locust's ClaimUser beside direct threads at the same concurrency and batch: is the load
generator the bottleneck? Real Locust as its own process (headless, loopback only, bounded by
--run-time and the drain watcher); both rates come from the database the same way: the seeded
jobs completed after the first completion, over the time from the first to the last one."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg

from harness.bench import ours
from harness.network import free_port
from harness.stack.processes import service_environment
from loadtests.audit import create_audit_tables, seed_jobs
from loadtests.locust_processes import LocustRun, start_locust
from loadtests.options import DB_URL_ENV

LOCUST_RUN_TIME = 120  # seconds: the bound of one Locust run (the drain watcher ends it sooner)

_RATE = """
WITH done AS (
    SELECT completed_at FROM ops.job_queue
    WHERE job_type = 'load_probe' AND payload ->> 'load_run' = %(run_id)s
      AND status = 'completed'
), first AS (SELECT min(completed_at) AS at FROM done)
SELECT count(*) FILTER (WHERE done.completed_at > first.at),
       extract(epoch FROM max(done.completed_at) - first.at)
FROM done, first
GROUP BY first.at
"""


class LocustRunError(RuntimeError):
    """Locust did not drain its jobs; the message names its log."""


def _seed(url: str, run_id: str, jobs: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        create_audit_tables(conn)
        seed_jobs(conn, run_id, jobs)
        conn.execute("VACUUM ANALYZE ops.job_queue")


def completion_rate(url: str, run_id: str) -> float:
    """Jobs/s of run_id's jobs, from its first completion to its last (0 when too few)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row: Any = conn.execute(_RATE, {"run_id": run_id}).fetchone()
    if row is None or not row[1]:
        return 0.0
    return float(row[0]) / float(row[1])


def locust_rate(url: str, out_dir: Path, jobs: int, users: int, batch: int) -> float:
    run_id = f"bench-locust-{secrets.token_hex(4)}"
    _seed(url, run_id, jobs)
    run = LocustRun(
        user_classes=("ClaimUser",),
        users=users,
        spawn_rate=float(users),
        run_time_s=LOCUST_RUN_TIME,
        out_dir=out_dir,
        custom_options=(
            "--run-id",
            run_id,
            "--claim-batch-size",
            str(batch),
            "--stop-when-drained",
        ),
        master_port=free_port(),
    )
    code = start_locust(run, service_environment({DB_URL_ENV: url})).wait(lambda _line: None)
    rate = completion_rate(url, run_id)
    if code != 0 or rate <= 0:
        raise LocustRunError(f"Locust exited {code} with rate {rate}; see {out_dir}/locust.log")
    return rate


def direct_rate(url: str, jobs: int, threads: int, batch: int) -> float:
    run_id = f"bench-direct-{secrets.token_hex(4)}"
    _seed(url, run_id, jobs)
    ours.drain(url, threads=threads, plan=ours.DrainPlan(batch=batch), max_jobs=jobs,
               max_seconds=LOCUST_RUN_TIME)  # fmt: skip
    return completion_rate(url, run_id)
