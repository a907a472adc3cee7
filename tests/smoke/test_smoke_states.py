"""`python -m smoke` against a real reference stack in every state it must detect.

Each test asserts the exit code, exactly which checks failed and what they say; `run_smoke`
asserts that no secret appears in any output.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from smoke_runs import PROD_KEY, ProdDeployment, run_smoke
from standins import LoopbackServer, Responder, built_dashboard, same_answer, service_role_key

from harness.network import free_port
from harness.telemetry.collector import OtlpCollector
from harness.waiting import wait_until

Conn = psycopg.Connection[Any]
CHECKS = [
    "config", "api_root", "api_health", "api_ready", "db_connect", "schema", "queue_health",
    "workers", "supabase_rest", "dashboard", "access", "canary",
]  # fmt: skip


def test_healthy_prod_deployment_passes_every_check_with_one_trace(
    prod: ProdDeployment, otel_collector: OtlpCollector, tmp_path: Path
) -> None:
    env = {**prod.env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otel_collector.endpoint}
    junit = tmp_path / "smoke.xml"
    run = run_smoke(env, "--allow-writes", "--canary-csv", "--junit", str(junit), tmp_path=tmp_path)

    assert run.code == 0, run.stdout + run.stderr
    assert [c["name"] for c in run.report["checks"]] == CHECKS  # type: ignore[index]
    assert {c["status"] for c in run.checks.values()} == {"passed"}
    assert "WARNING: writing to the PROD target" in run.stderr
    assert "smoke_canary completed by" in run.detail("canary")
    assert (
        "ingested; removed 1 smoke_canary job, 1 SMOKE- judgment, 1 smoke- batch, 1 ingest_csv job"
        in run.detail("canary")
    )
    with psycopg.connect(prod.database_url) as conn:
        leftovers = conn.execute(
            "SELECT (SELECT count(*) FROM ops.job_queue),"
            " (SELECT count(*) FROM ops.ingest_batches), (SELECT count(*) FROM public.judgments)"
        ).fetchone()
    assert leftovers == (0, 0, 0)  # the canary removed every row it created
    table = run.stdout.splitlines()
    assert [line.split()[1] for line in table[2:-1]] == CHECKS
    assert all(line.startswith("✓") for line in table[2:-1])
    assert table[-1].startswith("OK: 12 passed, 0 failed, 0 skipped in ")
    suite = ElementTree.parse(junit).getroot().find("testsuite")  # noqa: S314 - our own file
    assert suite is not None
    assert suite.get("tests") == "12"
    assert suite.get("failures") == "0"

    spans = otel_collector.wait_for_spans(
        lambda spans: any(s.service == "dragonfly-smoke" and s.name == "smoke run" for s in spans)
    )
    smoke_spans = [s for s in spans if s.service == "dragonfly-smoke"]
    (root,) = [s for s in smoke_spans if s.name == "smoke run"]
    checks = [s for s in smoke_spans if s.name.startswith("smoke ") and s is not root]
    assert sorted(s.attributes["smoke.check.name"] for s in checks) == sorted(CHECKS)
    assert {s.trace_id for s in smoke_spans} == {root.trace_id}
    assert {s.parent_span_id for s in checks} == {root.span_id}


def test_without_canary_nothing_is_written(prod: ProdDeployment, tmp_path: Path) -> None:
    """A role that may only read runs the whole read-only suite: the suite needs no writes."""
    role = f"smoke_reader_{free_port()}"
    db_conn = psycopg.connect(prod.database_url, autocommit=True)
    # BYPASSRLS: row-level security is forced (migration 0015), and a reader sees rows only so
    db_conn.execute(
        f"CREATE ROLE {role} LOGIN BYPASSRLS PASSWORD 'reader-Pa55' IN ROLE pg_read_all_data"
    )
    try:
        reader = make_conninfo(prod.database_url, user=role, password="reader-Pa55")
        prod.overrides["SUPABASE_DB_URL_PROD"] = reader
        run = run_smoke(prod.env(), tmp_path=tmp_path)
    finally:
        db_conn.execute(f"DROP ROLE {role}")
        db_conn.close()

    assert run.code == 0, run.stdout + run.stderr
    assert run.checks["canary"]["status"] == "skipped"
    assert "pass --canary" in run.detail("canary")
    assert "reader-Pa55" not in run.stdout + run.stderr


def test_api_down(prod_to_break: ProdDeployment, tmp_path: Path) -> None:
    prod_to_break.stack.services["api"].stop()
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"api_root", "api_health", "api_ready"}
    assert "cannot connect" in run.detail("api_root")


def test_api_returning_500_on_a_database_read(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    db_conn.execute("DROP VIEW ops.v_queue_health")
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"api_ready", "schema"}
    assert "GET /api/v1/ops/queue answered 500" in run.detail("api_ready")
    assert "ops.v_queue_health" in run.detail("schema")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            (500, "application/json", '{"error":{"code":"internal_error","message":"boom"}}'),
            "GET / answered 500: internal_error: boom",
            id="500-everywhere",
        ),
        pytest.param(
            (200, "text/html", "<html><body><h1>Application not found</h1></body></html>"),
            "GET / answered 200 but not as the Dragonfly API",
            id="200-proxy-page",
        ),
    ],
)
def test_api_url_answering_as_something_else(
    prod: ProdDeployment,
    serve: Callable[[Responder], LoopbackServer],
    tmp_path: Path,
    answer: tuple[int, str, str],
    expected: str,
) -> None:
    prod.overrides["DRAGONFLY_TARGET_API_URL"] = serve(same_answer(*answer)).url
    run = run_smoke(prod.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"api_root", "api_health", "api_ready"}
    assert expected in run.detail("api_root")


def test_database_unreachable(prod: ProdDeployment, tmp_path: Path) -> None:
    unreachable = f"postgresql://postgres:Unreach-Pa55@127.0.0.1:{free_port()}/postgres"
    prod.overrides["SUPABASE_DB_URL_PROD"] = unreachable
    run = run_smoke(prod.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"db_connect", "schema", "queue_health", "workers", "access"}
    assert "cannot connect" in run.detail("db_connect")
    assert "cannot run: db_connect failed" in run.detail("workers")


def test_schema_missing_a_column_and_a_function(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    db_conn.execute("ALTER TABLE ops.job_queue DROP COLUMN reap_count")
    db_conn.execute("DROP FUNCTION ops.extend_lock(uuid, text, interval)")
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"schema"}
    assert "column ops.job_queue.reap_count" in run.detail("schema")
    assert "function ops.extend_lock" in run.detail("schema")


def test_a_stuck_job(prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path) -> None:
    job_id = db_conn.execute("SELECT ops.queue_job('enforcement_drafting')").fetchone()[0]
    db_conn.execute(
        "UPDATE ops.job_queue SET status = 'processing', locked_by = 'enforcement_engine-gone',"
        " locked_at = now() - interval '31 minutes', attempts = 1 WHERE id = %s",
        [job_id],
    )
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"queue_health"}
    assert f"1 stuck (processing, lease older than 30.0 min): enforcement_drafting {job_id}" in (
        run.detail("queue_health")
    )


def test_a_stale_worker(prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path) -> None:
    prod_to_break.stack.services["enforcement"].process.kill()  # gone without saying goodbye
    prod_to_break.stack.services["enforcement"].process.wait()
    db_conn.execute(  # and five minutes pass
        "UPDATE ops.worker_heartbeats SET last_seen_at = now() - interval '5 minutes',"
        " started_at = started_at - interval '5 minutes' WHERE worker_type = 'enforcement_engine'"
    )
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"workers"}
    assert "enforcement_engine: no fresh heartbeat (newest 5." in run.detail("workers")


def test_a_crash_looping_worker(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    def ingest_starts() -> int:
        sql = "SELECT count(*) FROM ops.worker_heartbeats WHERE worker_type = 'ingest_processor'"
        return int(db_conn.execute(sql).fetchone()[0])

    for restart in range(2, 6):  # killed and restarted, as a platform restarts a crashing worker
        prod_to_break.stack.services["ingest"].process.kill()
        prod_to_break.stack.services["ingest"].process.wait()
        prod_to_break.stack.start_worker("ingest")
        wait_until(f"start {restart}'s heartbeat", lambda n=restart: ingest_starts() >= n, 30)
    run = run_smoke(prod_to_break.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"workers"}
    detail = run.detail("workers")
    assert "ingest_processor: crash loop, 5 starts in the last 5.0 min (limit 3) at " in detail
    assert "enforcement_engine" not in detail


def test_wrong_service_key(prod: ProdDeployment, tmp_path: Path) -> None:
    wrong = service_role_key("prodproject", signer="rotated-away")
    prod.overrides["SUPABASE_SERVICE_ROLE_KEY_PROD"] = wrong
    run = run_smoke(prod.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"supabase_rest"}
    assert run.detail("supabase_rest").startswith("key rejected: ")
    assert "copy the service_role key" in run.detail("supabase_rest")
    assert wrong != PROD_KEY


def test_dashboard_built_for_dev(
    prod: ProdDeployment, serve: Callable[[Responder], LoopbackServer], tmp_path: Path
) -> None:
    env = prod.env()
    dev_build = {
        "VITE_API_BASE_URL": prod.stack.api_url,
        "VITE_SUPABASE_URL": prod.dev_supabase_url,
        "VITE_SUPABASE_ANON_KEY": service_role_key("devproject", role="anon"),
    }
    env["DRAGONFLY_TARGET_DASHBOARD_URL"] = serve(built_dashboard(dev_build)).url
    run = run_smoke(env, tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"dashboard"}
    assert (
        f"built for dev: VITE_SUPABASE_URL is {prod.dev_supabase_url} (SUPABASE_URL_DEV), "
        f"expected {prod.supabase_url}"
    ) in run.detail("dashboard")


def test_missing_variables(prod: ProdDeployment, tmp_path: Path) -> None:
    prod.overrides["SUPABASE_URL_PROD"] = ""
    prod.overrides["SUPABASE_SERVICE_ROLE_KEY_PROD"] = ""
    run = run_smoke(prod.env(), tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"config"}
    assert "SUPABASE_URL_PROD (or --supabase-url) is not set" in run.detail("config")
    assert "SUPABASE_SERVICE_ROLE_KEY_PROD is not set" in run.detail("config")
    assert run.checks["supabase_rest"]["status"] == "skipped"


def test_canary_never_picked_up(
    prod_to_break: ProdDeployment, db_conn: Conn, tmp_path: Path
) -> None:
    workers = [prod_to_break.stack.services[kind] for kind in ("ingest", "enforcement")]
    for worker in workers:  # hung: heartbeats still fresh, but nothing is claimed
        worker.signal(signal.SIGSTOP)
    try:
        run = run_smoke(
            prod_to_break.env(),
            "--allow-writes",
            "--canary",
            "--canary-timeout",
            "3",
            tmp_path=tmp_path,
        )
    finally:
        for worker in workers:
            worker.signal(signal.SIGCONT)

    assert run.code == 1
    assert run.failed == {"canary"}
    assert "was not picked up within 3s (still pending)" in run.detail("canary")
    left = db_conn.execute("SELECT count(*) FROM ops.job_queue WHERE job_type = 'smoke_canary'")
    assert left.fetchone()[0] == 0


def test_a_dev_target_pointing_at_the_prod_api(prod: ProdDeployment, tmp_path: Path) -> None:
    prod_env = prod.env()
    dev_env = {
        "SUPABASE_MODE": "dev",
        "DRAGONFLY_TARGET_API_URL": prod.stack.api_url,  # a prod API (ENVIRONMENT=prod)
        "SUPABASE_DB_URL_DEV": prod.database_url,
        "SUPABASE_URL_DEV": prod.supabase_url,
        "SUPABASE_SERVICE_ROLE_KEY_DEV": PROD_KEY,
        "DRAGONFLY_TARGET_DASHBOARD_URL": prod_env["DRAGONFLY_TARGET_DASHBOARD_URL"],
    }
    run = run_smoke(dev_env, tmp_path=tmp_path)

    assert run.code == 1
    assert run.failed == {"api_root", "api_health"}
    assert "the API runs with ENVIRONMENT=prod but the target mode is dev" in run.detail("api_root")
