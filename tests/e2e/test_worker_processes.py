"""The workers as real processes: their start lines, poll intervals, and bad configuration."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness.otel_collector import OtlpCollector
from harness.processes import WORKER_COMMANDS, ReferenceStack, service_environment

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


def _claims(collector: OtlpCollector, service: str) -> int:
    """How many claim statements the service's psycopg spans recorded."""
    return sum(
        1
        for span in collector.spans()
        if span.service == service
        and "claim_pending_job" in str(span.attributes.get("db.statement", ""))
    )


def test_an_idle_worker_polls_at_its_interval(
    reference_stack: ReferenceStack, otel_collector: OtlpCollector
) -> None:
    reference_stack.extra_env.pop("WORKER_POLL_INTERVAL")
    reference_stack.start_worker("ingest", WORKER_POLL_INTERVAL="0.25")
    reference_stack.start_worker("enforcement")  # its default: 5.0 s
    time.sleep(3.0)
    reference_stack.stop()  # flushes the spans

    fast = _claims(otel_collector, "dragonfly-ingest_processor")
    slow = _claims(otel_collector, "dragonfly-enforcement_engine")
    assert 6 <= fast <= 16, fast  # ~12 polls in 3 s at 0.25 s
    assert 1 <= slow <= 2, slow  # the first poll, perhaps one more


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
