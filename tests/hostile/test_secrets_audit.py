"""Secrets audit: run the stack, the smoke suite and a short load test with recognisable fake
secrets, then scan every captured log, report and output for them.

The database is reached through a role made for this test whose password is a marker, the API
key and the Supabase service-role key are markers too; none may appear anywhere a person or a
CI system could read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from harness.stack.processes import ReferenceStack

RUN_TIMEOUT = 180  # seconds for the smoke or the load command
MARK = uuid.uuid4().hex[:10]
FAKE_PASSWORD = f"fake-db-password-{MARK}"
FAKE_API_KEY = f"fake-api-key-{MARK}"
FAKE_SERVICE_KEY = f"sb_secret_fake-service-role-{MARK}"  # the form smoke's check expects
SECRETS = (FAKE_PASSWORD, FAKE_API_KEY, FAKE_SERVICE_KEY)
CSV = b"Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date\r\nAU-1,P,D,1,1/1/2024\r\n"


@pytest.fixture
def audited_url(database_url: str, db_conn: psycopg.Connection[Any]) -> Iterator[str]:
    """This test's database through a role whose password is a marker."""
    role = f"audit_{MARK}"
    db_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(FAKE_PASSWORD)
        )
    )
    parts = conninfo_to_dict(database_url)
    try:
        yield f"postgresql://{role}:{FAKE_PASSWORD}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    finally:
        db_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        db_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    return f"exit {completed.returncode}\n{completed.stdout}{completed.stderr}"


def leaks(texts: dict[str, str]) -> list[str]:
    return [f"{secret!r} in {where}" for where, text in texts.items() for secret in SECRETS
            if secret in text]  # fmt: skip


@pytest.mark.slow
def test_no_secret_reaches_a_log_a_report_or_an_output(
    reference_stack: ReferenceStack, audited_url: str, tmp_path: Path
) -> None:
    reference_stack.database_url = audited_url
    reference_stack.service_urls = {}  # every service on the audited URL, not the login users
    reference_stack.api_key = FAKE_API_KEY
    reference_stack.extra_env["SUPABASE_SERVICE_ROLE_KEY_DEV"] = FAKE_SERVICE_KEY
    reference_stack.start_api()
    reference_stack.start_worker("ingest")
    reference_stack.start_worker("enforcement")
    with reference_stack.client() as client:
        accepted = client.post(
            "/api/v1/intake/upload", files={"file": ("audit.csv", CSV, "text/csv")}
        )
        for headers in ({"X-DRAGONFLY-API-KEY": FAKE_API_KEY + "x"}, {}):
            client.post("/api/v1/enforcement/strategy", content=b"{bad", headers=headers)
        answers = [client.get(path).text for path in ("/", "/health", "/readyz")]
    assert accepted.status_code == 202, accepted.text

    env = {
        **os.environ,
        "DRAGONFLY_TARGET_API_URL": reference_stack.api_url,
        "DRAGONFLY_TARGET_DB_URL": audited_url,
        "DRAGONFLY_API_KEY": FAKE_API_KEY,
        "SUPABASE_SERVICE_ROLE_KEY_DEV": FAKE_SERVICE_KEY,
    }
    reports = tmp_path / "reports"
    reports.mkdir()
    outputs = {
        "smoke": run(
            [sys.executable, "-m", "smoke", "--json", str(reports / "smoke.json"),
             "--junit", str(reports / "smoke.xml")], env, tmp_path,
        ),
        "smoke with a bad key": run(
            [sys.executable, "-m", "smoke"],
            {**env, "DRAGONFLY_API_KEY": f"{FAKE_API_KEY}-wrong"},
            tmp_path,
        ),
        "load": run(
            [sys.executable, "-m", "harness.cli", "load", "--scenario", "claim", "--users", "2",
             "--run-time", "30", "--seed-jobs", "50", "--allow-writes", "--out",
             str(reports / "load")], env, tmp_path,
        ),
    }  # fmt: skip
    reference_stack.stop()
    captured = {**outputs, **{f"response {n}": text for n, text in enumerate(answers)}}
    for service in reference_stack.services.values():
        captured[f"{service.name} stdout"] = service.stdout()
        captured[f"{service.name} stderr"] = service.stderr()
    for path in reports.rglob("*"):
        if path.is_file():
            captured[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")

    assert leaks(captured) == []
    # The scan does find a secret where one is (it found the key in a command echo once).
    assert leaks({**captured, "planted": f"key={FAKE_API_KEY}"}) == [f"{FAKE_API_KEY!r} in planted"]
    assert "smoke.json" in " ".join(captured), outputs["smoke"][-2000:]
    for name in ("smoke", "smoke with a bad key"):  # the suite ran its checks (2: could not run)
        assert outputs[name].startswith(("exit 0", "exit 1")), outputs[name][-2000:]
    assert outputs["load"].startswith("exit 0"), outputs["load"][-3000:]
    assert any("load" in name and name != "load" for name in captured), outputs["load"][-3000:]
    assert len(captured["api stdout"] + captured["api stderr"]) > 0
