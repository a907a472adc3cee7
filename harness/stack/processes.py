"""The reference API and workers as real OS processes, started with the seed's commands."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.network import free_port
from harness.telemetry.tracecontext import send_trace_context
from harness.waiting import WaitTimeoutError, wait_until

READY_TIMEOUT = 60.0  # seconds for a service to come up
STOP_TIMEOUT = 30.0  # seconds a service gets to finish its job in hand after SIGTERM
# The seed's start commands (infra-notes.md), with this project's package names.
API_COMMAND = ("-m", "reference.api")
WORKER_COMMANDS = {
    "ingest": ("-m", "reference.workers.ingest_processor"),
    "enforcement": ("-m", "reference.workers.enforcement_engine"),
}


def service_environment(
    required: Mapping[str, str], defaults: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a service process: our defaults < the caller's environment < required.

    Everything the user set reaches the service (the configuration contract's variables, every
    OTEL_* variable, MAX_UPLOAD_BYTES, ...) and beats our defaults; only what the harness must
    decide (which database, which key, which port) is forced.
    """
    env = {**(defaults or {}), **os.environ, **required}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServiceProcess:
    """One running service; stdout and stderr go to files so nothing blocks on a full pipe."""

    name: str
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """The first match of `pattern` in stdout+stderr; RuntimeError if it exits or times out."""

        def printed() -> re.Match[str] | None:
            exited = self.process.poll() is not None  # read first: its last output is then in
            match = re.search(pattern, self.stdout() + self.stderr(), flags=re.MULTILINE)
            if match is None and exited:
                raise WaitTimeoutError(f"{self.name} exited")
            return match

        try:
            return wait_until(f"{self.name} to print {pattern!r}", printed, timeout, 0.05)
        except WaitTimeoutError:
            raise RuntimeError(
                f"{self.name} did not print {pattern!r} (exit code {self.process.poll()}):\n"
                f"{self.stdout()[-2000:]}\n{self.stderr()[-3000:]}"
            ) from None

    def signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait for a clean exit, SIGKILL after `timeout`; returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_service(
    name: str, command: tuple[str, ...], env: dict[str, str], log_dir: Path
) -> ServiceProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, *command], env=env, stdout=stdout, stderr=stderr
        )
    return ServiceProcess(name, process, stdout_path, stderr_path)


@dataclass
class ReferenceStack:
    """The API and workers on one database; start what a test needs, stop all at the end."""

    database_url: str
    log_dir: Path
    api_key: str = "harness-api-key"
    extra_env: dict[str, str] = field(default_factory=dict)  # forced, like the database URL
    default_env: dict[str, str] = field(default_factory=lambda: {"ENVIRONMENT": "dev"})
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    api_port: int = 0
    api_host: str = "127.0.0.1"
    # The URL each service connects with, by "api" / "worker" (default: database_url): the
    # least-privileged login users of harness.postgres.logins, so a missing grant fails a test.
    service_urls: dict[str, str] = field(default_factory=dict)

    def environment(self, service: str = "worker") -> dict[str, str]:
        url = self.service_urls.get(service, self.database_url)
        required = {"DATABASE_URL": url, "DRAGONFLY_API_KEY": self.api_key}
        return service_environment({**required, **self.extra_env}, self.default_env)

    def start_api(self, port: int | None = None, host: str = "127.0.0.1") -> ServiceProcess:
        """Start the API on host:port (a free port by default) and wait until it is healthy."""
        self.api_port = port or free_port()
        self.api_host = host
        env = {**self.environment("api"), "PORT": str(self.api_port), "HOST": host}
        api = start_service("api", API_COMMAND, env, self.log_dir)
        self.services["api"] = api

        def healthy() -> bool | None:
            if api.process.poll() is not None:
                code = api.process.returncode
                raise RuntimeError(f"the API exited {code}:\n{api.stderr()[-3000:]}")
            try:
                return httpx.get(f"{self.api_url}/health", timeout=1.0).status_code == 200 or None
            except httpx.TransportError:
                return None

        try:
            wait_until("the API to answer /health", healthy, READY_TIMEOUT, 0.1)
        except WaitTimeoutError:
            raise RuntimeError(f"the API did not become healthy:\n{api.stderr()[-3000:]}") from None
        return api

    @property
    def api_url(self) -> str:
        """Where a client reaches the API (loopback when it listens on every address)."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "") else self.api_host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.api_port}"

    def start_worker(self, kind: str, **env: str) -> ServiceProcess:
        """Start the "ingest" or "enforcement" worker and wait for its start lines.

        A second worker of a kind while the first still runs is named "<kind>-2" (its logs
        too), so `stop()` stops every process the stack started.
        """
        name, number = kind, 1
        while name in self.services and self.services[name].process.poll() is None:
            number += 1
            name = f"{kind}-{number}"
        worker = start_service(
            name, WORKER_COMMANDS[kind], {**self.environment(), **env}, self.log_dir
        )
        self.services[name] = worker
        worker.wait_for_output(r"^Job types: .+$")
        return worker

    def client(self) -> httpx.Client:
        """An HTTP client for the API that sends the API key and the current trace context."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"X-DRAGONFLY-API-KEY": self.api_key},
            timeout=30.0,
            event_hooks={"request": [send_trace_context]},
        )

    def stop(self) -> dict[str, int]:
        """Stop every service (workers first, so the API outlives their last requests)."""
        order = sorted(self.services, key=lambda name: name == "api")
        return {name: self.services[name].stop() for name in order}
