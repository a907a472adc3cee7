"""The command itself: when it cannot run (exit 2), its time bound, and its default target."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from smoke_runs import BASICS, PROD_KEY, run_smoke

NAMED = {
    "SUPABASE_MODE": "prod",
    "DRAGONFLY_TARGET_API_URL": "http://127.0.0.1:9",
    "SUPABASE_DB_URL_PROD": "postgresql://postgres:Never-Sh0wn@127.0.0.1:9/postgres",
    "SUPABASE_SERVICE_ROLE_KEY_PROD": PROD_KEY,
    "DRAGONFLY_API_KEY": "api-key-never-shown",
}


@pytest.mark.parametrize(
    ("env", "args", "reason"),
    [
        pytest.param(
            {**NAMED, "SUPABASE_MODE": "staging"}, [], "'staging' is not dev or prod", id="mode"
        ),
        pytest.param(NAMED, ["--api-url", "api.example.com"], "is not an http(s) URL", id="url"),
        pytest.param(NAMED, ["--canary"], "pass --allow-writes", id="canary-read-only"),
        pytest.param(
            {"SUPABASE_MODE": "prod", "SUPABASE_SERVICE_ROLE_KEY_PROD": PROD_KEY},
            [],
            "mode prod names no target",
            id="prod-without-target",
        ),
        pytest.param(NAMED, ["--deadline", "-1"], "is not a positive number", id="flag"),
        pytest.param(
            {**NAMED, "OTEL_TRACES_EXPORTER": "zipkin"}, [], "OTEL_TRACES_EXPORTER", id="otel"
        ),
    ],
)
def test_the_suite_cannot_run_exits_2_with_the_reason(
    env: dict[str, str], args: list[str], reason: str, tmp_path: Path
) -> None:
    run = run_smoke(env, *args, tmp_path=tmp_path)

    assert run.code == 2
    assert reason in run.stderr
    assert run.report == {}  # no table, no report: nothing was checked


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A host that accepts connections and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_host_that_never_answers_cannot_hold_the_run(silent_host: str, tmp_path: Path) -> None:
    env = {
        **NAMED,
        "DRAGONFLY_TARGET_API_URL": silent_host,
        "DRAGONFLY_TARGET_DASHBOARD_URL": silent_host,
        "SUPABASE_URL_PROD": silent_host,
    }
    # A deadline of 12 times the run's budget (a held run lasts SMOKE_TIMEOUT): it fails here.
    run = run_smoke(env, "--check-timeout", "1.5", "--deadline", "5", tmp_path=tmp_path, timeout=60)

    assert run.code == 1
    assert run.detail("api_root") == "timed out after 1.5s (no answer)"
    assert "budget (--deadline) was used up" in run.detail("dashboard")
    assert all(c["status"] != "passed" for n, c in run.checks.items() if n != "config")


def test_without_a_target_it_checks_a_local_stack_it_starts(tmp_path: Path) -> None:
    """`dragonfly-harness smoke --canary`: embedded Postgres, API and workers, then torn down."""
    console_script = str(Path(sys.executable).with_name("dragonfly-harness"))
    run = run_smoke({}, "smoke", "--canary", tmp_path=tmp_path, command=(console_script,))

    assert run.code == 0, run.stdout + run.stderr
    assert run.report["target"] == "the local reference stack (embedded Postgres)"
    skipped = {name for name, c in run.checks.items() if c["status"] == "skipped"}
    assert skipped == {"supabase_rest", "dashboard"}
    assert "the local stack has none" in run.detail("dashboard")
    assert "smoke_canary completed by" in run.detail("canary")
    assert "OK: 10 passed, 0 failed, 2 skipped" in run.stdout
    # The stack's secrets are its own: no URL with a password shows anywhere.
    assert not re.search(r"://[^:/\s]+:(?!\*\*\*)[^@\s]+@", run.stdout + run.stderr)


def test_json_alone_replaces_the_table_on_stdout() -> None:
    env = {name: os.environ[name] for name in BASICS if name in os.environ}
    process = subprocess.run(
        [sys.executable, "-m", "smoke", "--json", "--check-timeout", "2"],
        env={**env, **NAMED},
        capture_output=True,
        text=True,
        timeout=60,
    )

    document = json.loads(process.stdout)
    assert process.returncode == document["exit_code"] == 1
    assert document["checks"][1]["name"] == "api_root"
    assert "cannot connect" in document["checks"][1]["detail"]
    assert "Never-Sh0wn" not in process.stdout + process.stderr
