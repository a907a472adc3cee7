"""`dragonfly-harness up` (the README's `./dev up`) as a real process, with its demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from harness.inputs.csvgen import write_simplicity_csv
from harness.stack.demo import finished_batch, upload_csv
from harness.telemetry.collector import OtlpCollector
from harness.waiting import wait_until

UP = [sys.executable, "-m", "harness.cli", "up", "--port", "0"]
RUN_TIMEOUT = 180  # seconds


def run_up(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*UP, "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_up_starts_everything_and_keeps_secrets_out_of_its_output(tmp_path: Path) -> None:
    result = run_up("--exit-after", "1", state_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert re.search(r"migrations: [1-9]\d* applied now", output)
    assert "[ingest] 🚀 Starting Ingest Processor Worker (env=dev)" in output
    assert "[enforcement] Job types: enforcement_strategy, enforcement_drafting" in output
    assert re.search(r"API\s+│ http://127\.0\.0\.1:\d+", output)
    assert "stopped (ingest exited 0, enforcement exited 0, api exited 0)" in output
    database_url = (tmp_path / "database-url").read_text().strip()
    api_key = (tmp_path / "api-key").read_text().strip()
    password = re.search(r"://[^:]+:([^@]+)@", database_url)
    assert password is not None
    assert password[1] not in output
    assert api_key not in output
    assert (tmp_path / "api-key").stat().st_mode & 0o777 == 0o600


def private_again(tmp_path: Path) -> None:
    """What a pytest session starting in another lane does (`./dev test` runs three at once):
    it takes group and other permissions off /tmp/pytest-of-<user> again."""
    root = next(p for p in tmp_path.parents if p.name.startswith("pytest-of-"))
    root.chmod(root.stat().st_mode & ~0o077)


def test_up_serves_the_api_until_ctrl_c(tmp_path: Path) -> None:
    data_root = tmp_path / "pg"
    data_root.mkdir()
    command = [*UP, "--state-dir", str(tmp_path), "--pg-data-root", str(data_root)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("ready"):
                    break
            match = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines))
            assert match, lines
            assert httpx.get(f"{match[0]}/health").status_code == 200
            private_again(tmp_path)

            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0
            assert "api exited 0" in process.stdout.read()
            assert list(data_root.iterdir()) == []  # the server's data folder is gone
        finally:
            process.kill()


def test_demo_uploads_a_csv_and_follows_it_to_draft_packets(tmp_path: Path) -> None:
    result = run_up("--demo", state_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo summary" in result.stdout
    assert re.search(r"draft packets\s+│ [1-9]\d* \(fees \d+\.\d\d\)", result.stdout)
    assert re.search(r"rows\s+│ \d+ total, [1-9]\d* valid, [1-9]\d* invalid", result.stdout)


def test_up_with_an_unreachable_external_server_fails_with_a_clear_message(
    tmp_path: Path,
) -> None:
    url = "postgresql://u:s3cret@127.0.0.1:1/db"
    result = run_up("--pg-source", "external", "--pg-url", url, state_dir=tmp_path)

    assert result.returncode == 1
    assert "external: cannot connect to 127.0.0.1:1/db" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def _start_up(state_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """`up` in the background until it prints "ready"; the lines so far."""
    process = subprocess.Popen(
        [*UP, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("ready"):
            return process, lines
    process.wait(timeout=60)
    raise AssertionError("".join(lines))


def _stop_up(process: subprocess.Popen[str], lines: list[str]) -> str:
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    with process.stdout:
        rest = process.stdout.read()
    assert process.wait(timeout=60) == 0, "".join(lines) + rest
    return "".join(lines) + rest


def test_up_passes_the_users_environment_to_every_service(
    tmp_path: Path, otel_collector: OtlpCollector
) -> None:
    big = write_simplicity_csv(tmp_path / "big.csv", rows=140_000)
    assert 10 * 1024 * 1024 < big.stat().st_size < 20 * 1024 * 1024  # above the default limit
    env = {
        "MAX_UPLOAD_BYTES": str(20 * 1024 * 1024),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otel_collector.endpoint,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=qa,team=payments",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    process, lines = _start_up(tmp_path / "state", env)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines))
        assert url, lines
        key = (tmp_path / "state" / "api-key").read_text().strip()
        with httpx.Client(
            base_url=url[0], headers={"X-DRAGONFLY-API-KEY": key}, timeout=60
        ) as client:
            accepted = upload_csv(client, big)  # 413 if MAX_UPLOAD_BYTES did not arrive
            wait_until("the big batch", lambda: finished_batch(client, accepted["batch_id"]), 120)
        otel_collector.wait_for_spans(
            lambda spans: any(s.name == "complete_job ops.job_queue" for s in spans), 30
        )
    finally:
        output = _stop_up(process, lines)

    spans = otel_collector.spans()
    names = {(span.service, span.name) for span in spans}
    assert ("dragonfly-api", "send ops.job_queue") in names
    assert ("dragonfly-ingest_processor", "claim_pending_job ops.job_queue") in names
    assert ("dragonfly-ingest_processor", "process ops.job_queue") in names
    metrics = {(service, name) for service, name, _, _ in otel_collector.metric_points()}
    assert ("dragonfly-api", "messaging.client.sent.messages") in metrics
    assert ("dragonfly-ingest_processor", "messaging.process.duration") in metrics
    assert {log.service for log in otel_collector.logs()} >= {
        "dragonfly-api",
        "dragonfly-ingest_processor",
        "dragonfly-enforcement_engine",
    }
    resource = otel_collector.resource("dragonfly-api")
    assert resource["deployment.environment.name"] == "qa"  # the user's value, not ours
    assert resource["team"] == "payments"
    assert key not in output


def test_up_shows_this_runs_logs_and_none_of_an_earlier_one(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("api", "ingest", "enforcement"):
        # Longer than anything the new run writes at first: a tail from offset 0 shows it.
        (logs / f"{name}.stderr").write_text("OLD LINE FROM AN EARLIER RUN\n" * 200)
        (logs / f"{name}.stdout").write_text("OLD LINE FROM AN EARLIER RUN\n" * 200)

    result = run_up("--exit-after", "1", state_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OLD LINE FROM AN EARLIER RUN" not in result.stdout
    assert "[ingest] 🚀 Starting Ingest Processor Worker (env=dev)" in result.stdout
    assert "[enforcement] Poll interval: 5.0s" in result.stdout


def test_up_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    result = run_up("--exit-after", "0.5", state_dir=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Uvicorn running on http://127\.0\.0\.1:\d+", result.stdout)
