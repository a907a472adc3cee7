"""The workers as real processes: their start lines, poll intervals, and bad configuration."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys

import pytest

from harness.network import free_port
from harness.stack.processes import WORKER_COMMANDS, ReferenceStack, service_environment
from harness.telemetry.collector import OtlpCollector

EMPTY_POLL_LOG = "claim_pending_job: nothing due"
START_LINES = {
    "ingest": [
        "🚀 Starting Ingest Processor Worker (env={env})",
        "Poll interval: 2.0s",
        "Job types: ingest_csv",
    ],
    "enforcement": [
        "🚀 Starting Enforcement Engine Worker (env={env})",
        "Poll interval: 5.0s",
        "Job types: enforcement_strategy, enforcement_drafting",
    ],
}


@pytest.mark.parametrize("kind", ["ingest", "enforcement"])
@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_worker_prints_exactly_the_seeds_start_lines(
    reference_stack: ReferenceStack, kind: str, environment: str
) -> None:
    reference_stack.extra_env.pop("WORKER_POLL_INTERVAL")
    worker = reference_stack.start_worker(kind, ENVIRONMENT=environment)

    expected = [line.format(env=environment) for line in START_LINES[kind]]
    assert worker.stdout().splitlines()[:3] == expected


def test_worker_poll_interval_overrides_both_defaults(reference_stack: ReferenceStack) -> None:
    reference_stack.extra_env["WORKER_POLL_INTERVAL"] = "0.5"
    for kind in ("ingest", "enforcement"):
        worker = reference_stack.start_worker(kind)
        assert worker.stdout().splitlines()[1] == "Poll interval: 0.5s"


def _claim_starts(collector: OtlpCollector, service: str) -> list[float]:
    """When each empty poll of the service was logged (seconds, sender's clock), in order.

    Empty polls make no spans (idle polling must not flood a tracing backend); at DEBUG level
    each one logs a line, which the worker exports as an OTLP log record with its time.
    """
    return sorted(
        record.time_unix_nano / 1e9
        for record in collector.logs()
        if record.service == service and record.body.startswith(EMPTY_POLL_LOG)
    )


def _gaps(starts: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


def test_an_idle_worker_polls_at_its_interval(
    reference_stack: ReferenceStack, otel_collector: OtlpCollector
) -> None:
    # The gap between successive claims is the poll interval plus one claim's time: measured
    # that way, neither the other worker's start-up nor a loaded machine moves the result.
    reference_stack.extra_env.pop("WORKER_POLL_INTERVAL")
    reference_stack.extra_env["LOG_LEVEL"] = "DEBUG"
    reference_stack.start_worker("ingest", WORKER_POLL_INTERVAL="0.25")
    reference_stack.start_worker("enforcement", WORKER_POLL_INTERVAL="1.5")
    services = {"dragonfly-ingest_processor": 0.25, "dragonfly-enforcement_engine": 1.5}
    otel_collector.wait_for_spans(
        lambda _spans: all(len(_claim_starts(otel_collector, name)) >= 4 for name in services),
        timeout=60.0,
    )

    for service, interval in services.items():
        gaps = _gaps(_claim_starts(otel_collector, service))
        # Never sooner than the interval; the typical gap is the interval plus a claim's time.
        assert min(gaps) >= interval * 0.95, (service, gaps)
        assert statistics.median(gaps) < interval + 0.5, (service, gaps)


@pytest.mark.parametrize("kind", ["ingest", "enforcement"])
def test_a_worker_with_bad_configuration_exits_2_naming_the_variable(kind: str) -> None:
    secret = "pa55-w0rd-never-printed"
    env = service_environment(
        {
            "SUPABASE_MODE": "staging",
            "SUPABASE_DB_URL_PROD": f"postgresql://svc:{secret}@db.example:5432/app",
            "SUPABASE_SERVICE_ROLE_KEY_PROD": secret,
            "WORKER_POLL_INTERVAL": "soon",
        }
    )
    result = subprocess.run(
        [sys.executable, *WORKER_COMMANDS[kind]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "SUPABASE_MODE: 'staging' is not one of dev, prod" in result.stderr
    assert "WORKER_POLL_INTERVAL: 'soon'" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert "Starting" not in result.stdout  # no start lines before the configuration is valid


def test_a_worker_stops_promptly_when_its_collector_is_gone(
    reference_stack: ReferenceStack,
) -> None:
    # Each exporter retries a dead collector until its 10 s deadline, one after the other: a
    # worker took 30 s to stop, and the harness (like a platform) kills it after 30.
    dead = f"http://127.0.0.1:{free_port()}"
    reference_stack.extra_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = dead
    for signal in ("traces", "metrics", "logs"):  # the stack sets each signal's endpoint too
        reference_stack.extra_env[f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"] = (
            f"{dead}/v1/{signal}"
        )
    worker = reference_stack.start_worker("ingest")
    # An exporter retrying the start-up records against the dead collector.
    worker.wait_for_output(r"encountered while exporting \w+ batch, retrying in")
    # 15 s to exit cleanly (half the 30 s of exporters retrying in turn), else SIGKILL: -9.
    assert worker.stop(timeout=15) == 0, worker.stderr()[-2000:]
