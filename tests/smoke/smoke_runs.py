"""Running `python -m smoke` in tests, and a real reference stack dressed as a prod deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict
from standins import (
    LoopbackServer,
    Responder,
    built_dashboard,
    service_role_key,
    supabase_rest,
)

from harness.network import free_port
from harness.stack.processes import ReferenceStack

SMOKE_TIMEOUT = 150  # seconds: the suite bounds itself well below this
BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
PROD_KEY = service_role_key("prodproject")
DEV_KEY = service_role_key("devproject")
DEV_DB_URL = "postgresql://postgres:dev-db-Pa55word@127.0.0.1:1/dragonfly_dev"


@dataclass
class SmokeRun:
    code: int
    stdout: str
    stderr: str
    report: dict[str, object] = field(default_factory=dict)

    @property
    def checks(self) -> dict[str, dict[str, str]]:
        return {str(c["name"]): c for c in self.report.get("checks", [])}  # type: ignore[attr-defined]

    @property
    def failed(self) -> set[str]:
        return {name for name, c in self.checks.items() if c["status"] == "failed"}

    def detail(self, name: str) -> str:
        return self.checks[name]["detail"]


def secrets_in(env: Mapping[str, str]) -> list[str]:
    """Every secret a run was given: keys, database URLs and their passwords."""
    found = []
    for name, value in env.items():
        if "KEY" in name or "DB_URL" in name or name == "DATABASE_URL":
            found.append(value)
            if "://" in value or "=" in value:
                password = conninfo_to_dict(value).get("password")
                found += [str(password)] if password else []
    return [secret for secret in found if secret]


def run_smoke(
    env: Mapping[str, str],
    *args: str,
    tmp_path: Path,
    command: tuple[str, ...] = (),
    timeout: float = SMOKE_TIMEOUT,
) -> SmokeRun:
    """`python -m smoke ARGS` with exactly `env` (plus PATH and friends); no secret in output.

    A run that outlasts `timeout` seconds fails the test (subprocess.TimeoutExpired)."""
    report = tmp_path / f"smoke-{len(list(tmp_path.glob('smoke-*.json')))}.json"
    full_env = {name: os.environ[name] for name in BASICS if name in os.environ}
    full_env.update(env)
    process = subprocess.run(
        [*(command or (sys.executable, "-m", "smoke")), *args, "--json", str(report)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = process.stdout + process.stderr + (report.read_text() if report.exists() else "")
    for secret in secrets_in(env):
        assert secret not in output, "a secret appears in the smoke output"
    loaded = json.loads(report.read_text()) if report.exists() else {}
    return SmokeRun(process.returncode, process.stdout, process.stderr, loaded)


def start_prod_services(stack: ReferenceStack) -> None:
    """The API and both workers with ENVIRONMENT=prod, started side by side."""
    stack.extra_env["ENVIRONMENT"] = "prod"
    with ThreadPoolExecutor(3) as starting:
        services = [
            starting.submit(stack.start_api),
            starting.submit(stack.start_worker, "ingest"),
            starting.submit(stack.start_worker, "enforcement"),
        ]
    for service in services:
        service.result()  # a service that did not start fails the test here


@dataclass
class ProdDeployment:
    """A running reference stack posing as prod, with Supabase and dashboard stand-ins."""

    stack: ReferenceStack
    serve: Callable[[Responder], LoopbackServer]
    supabase_url: str = ""
    dev_supabase_url: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}")
    overrides: dict[str, str] = field(default_factory=dict)  # what this test tells smoke

    def __post_init__(self) -> None:
        self.supabase_url = self.serve(supabase_rest(PROD_KEY)).url

    @property
    def database_url(self) -> str:
        return self.stack.database_url

    def dashboard(self, api_url: str, supabase_url: str) -> str:
        values = {
            "VITE_API_BASE_URL": api_url,
            "VITE_SUPABASE_URL": supabase_url,
            "VITE_SUPABASE_ANON_KEY": service_role_key("prodproject", role="anon"),
        }
        return self.serve(built_dashboard(values)).url

    def env(self) -> dict[str, str]:
        """SUPABASE_MODE=prod and its variables, the dev ones beside them, then `overrides`."""
        api_url = self.overrides.get("DRAGONFLY_TARGET_API_URL", self.stack.api_url)
        env = {
            "SUPABASE_MODE": "prod",
            "DRAGONFLY_TARGET_API_URL": api_url,
            "SUPABASE_DB_URL_PROD": self.database_url,
            "SUPABASE_URL_PROD": self.supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY_PROD": PROD_KEY,
            "DRAGONFLY_TARGET_DASHBOARD_URL": self.dashboard(api_url, self.supabase_url),
            "DRAGONFLY_API_KEY": self.stack.api_key,
            "SUPABASE_URL_DEV": self.dev_supabase_url,
            "SUPABASE_SERVICE_ROLE_KEY_DEV": DEV_KEY,
            "SUPABASE_DB_URL_DEV": DEV_DB_URL,
        }
        env.update(self.overrides)
        return {name: value for name, value in env.items() if value}
