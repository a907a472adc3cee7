"""The canary cleans up after itself however its check ends, and after earlier runs that died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from smoke_runs import BASICS, ProdDeployment, run_smoke

from harness.waiting import wait_until

Conn = psycopg.Connection[Any]


def _counts(conn: Conn) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM ops.job_queue WHERE job_type = 'smoke_canary'),"
        " (SELECT count(*) FROM ops.ingest_batches WHERE filename LIKE 'smoke-%%'),"
        " (SELECT count(*) FROM public.judgments WHERE case_number LIKE 'SMOKE-%%')"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_a_canary_whose_check_times_out_still_cleans_up(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    workers = [prod_to_break.stack.services[kind] for kind in ("ingest", "enforcement")]
    for worker in workers:  # hung: the canary waits its whole --canary-timeout
        worker.signal(signal.SIGSTOP)
    try:  # the run's deadline ends the canary's check long before its 60 s wait would
        run = run_smoke(
            prod_to_break.env(), "--allow-writes", "--canary", "--canary-timeout", "60",
            "--deadline", "10", tmp_path=tmp_path,
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.signal(signal.SIGCONT)

    assert run.code == 1
    assert run.failed == {"canary"}
    assert "timed out" in run.detail("canary")
    assert _counts(db_conn) == (0, 0, 0), run.detail("canary")


def test_leftovers_of_a_killed_run_are_reported_then_removed(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    ingest = prod_to_break.stack.services["ingest"]
    ingest.signal(signal.SIGSTOP)  # the CSV canary waits; the job canary still completes
    env = {name: os.environ[name] for name in BASICS if name in os.environ}
    env.update(prod_to_break.env())
    killed = subprocess.Popen(
        [sys.executable, "-m", "smoke", "--allow-writes", "--canary-csv"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until("the CSV canary's upload", lambda: _counts(db_conn)[1] == 1 or None, 60)
        killed.kill()  # killed mid-canary: nothing of its own runs after this
        killed.wait()
    finally:
        ingest.signal(signal.SIGCONT)
    wait_until("the ingest worker to load the row", lambda: _counts(db_conn)[2] == 1 or None, 30)
    db_conn.execute(  # and ten minutes pass
        "UPDATE ops.ingest_batches SET created_at = created_at - interval '10 minutes';"
        "UPDATE public.judgments SET created_at = created_at - interval '10 minutes';"
        "UPDATE ops.job_queue SET created_at = created_at - interval '10 minutes'"
    )
    db_conn.execute("SELECT ops.queue_job('smoke_canary', '{\"run_id\": \"killed\"}')")
    db_conn.execute(
        "UPDATE ops.job_queue SET created_at = now() - interval '10 minutes'"
        " WHERE job_type = 'smoke_canary'"
    )
    left = _counts(db_conn)
    assert left[1:] == (1, 1)

    read_only = run_smoke(prod_to_break.env(), tmp_path=tmp_path)
    assert read_only.code == 1
    assert read_only.failed == {"canary"}
    detail = read_only.detail("canary")
    assert "left by earlier runs" in detail
    assert "1 SMOKE- judgment" in detail
    assert "--allow-writes --canary" in detail
    assert _counts(db_conn) == left  # a read-only run removes nothing

    cleaning = run_smoke(prod_to_break.env(), "--allow-writes", "--canary", tmp_path=tmp_path)
    assert cleaning.code == 0, cleaning.stdout + cleaning.stderr
    assert "removed canary leftovers of earlier runs" in cleaning.detail("canary")
    assert _counts(db_conn) == (0, 0, 0)
    row = db_conn.execute("SELECT count(*) FROM ops.job_queue WHERE job_type = 'ingest_csv'")
    assert row.fetchone()[0] == 0  # the killed run's ingest job went too
