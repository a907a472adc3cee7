"""Locust as its own processes (never imported here: importing it monkey-patches everything).

One headless process, or a master with N worker processes on this machine (more may join from
other machines). Output goes to log files; the caller shows a progress line from the CSV stats.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STOP_TIMEOUT = 10  # seconds a user gets to finish its claim + complete when the run ends
SHUTDOWN_GRACE = 90.0  # seconds past the run time (+ stop timeout) before the run is killed
PROGRESS_INTERVAL = 1.0  # seconds between progress lines


@dataclass(frozen=True)
class LocustRun:
    """What to run: which users, how many, for how long, where the reports go."""

    user_classes: tuple[str, ...]
    users: int
    spawn_rate: float
    run_time_s: int
    out_dir: Path
    custom_options: tuple[str, ...]  # e.g. ("--run-id", "...", "--claim-batch-size", "10")
    host: str | None = None
    local_workers: int = 0  # 0: one standalone process; N: a master and N worker processes
    remote_workers: int = 0  # workers the master also waits for, started on other machines
    master_bind_host: str = "127.0.0.1"
    master_port: int = 5557

    @property
    def csv_prefix(self) -> Path:
        return self.out_dir / "locust"

    @property
    def json_path(self) -> Path:
        return self.out_dir / "locust.json"  # --json-file appends .json to its argument

    @property
    def html_path(self) -> Path:
        return self.out_dir / "report.html"

    def main_command(self) -> list[str]:
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--users", str(self.users), "--spawn-rate", str(self.spawn_rate),
            "--run-time", f"{self.run_time_s}s", "--stop-timeout", str(STOP_TIMEOUT),
            "--html", str(self.html_path), "--csv", str(self.csv_prefix),
            "--json-file", str(self.csv_prefix), "--only-summary",
            "--exit-code-on-error", "0",  # the summary's thresholds decide the exit code
            *self.custom_options,
        ]  # fmt: skip
        if self.host:
            command += ["--host", self.host]
        if self.local_workers or self.remote_workers:
            command += [
                "--master", "--master-bind-host", self.master_bind_host,
                "--master-bind-port", str(self.master_port),
                "--expect-workers", str(self.local_workers + self.remote_workers),
                "--expect-workers-max-wait", "120",
            ]  # fmt: skip
        return [*command, *self.user_classes]

    def worker_command(self) -> list[str]:
        return [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", "127.0.0.1", "--master-port", str(self.master_port),
            *self.user_classes,
        ]  # fmt: skip


@dataclass
class RunningLocust:
    run: LocustRun
    main: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def wait(self, progress: Callable[[str], None]) -> int:
        """Wait for the run to end (bounded), reporting progress; the master's exit code."""
        started = time.monotonic()
        deadline = started + self.run.run_time_s + STOP_TIMEOUT + SHUTDOWN_GRACE
        while self.main.poll() is None:
            if time.monotonic() > deadline:
                progress("the Locust run overran its time: stopping it")
                self.kill()
                break
            progress(progress_line(self.run.csv_prefix, time.monotonic() - started))
            time.sleep(PROGRESS_INTERVAL)
        code = self.main.wait()
        for worker in self.workers:
            try:
                worker.wait(STOP_TIMEOUT + 20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        # The last line, from the stats Locust writes as it exits: a run that drains its jobs
        # within a progress interval shows its totals too.
        progress(progress_line(self.run.csv_prefix, time.monotonic() - started))
        return code

    def kill(self) -> None:
        for process in [self.main, *self.workers]:
            if process.poll() is None:
                process.kill()
                process.wait()

    def stop(self) -> None:
        """End every process still running: SIGTERM (Locust quits and writes its reports), then
        SIGKILL for any that outlive STOP_TIMEOUT. Nothing to do after a finished run."""
        running = [p for p in [self.main, *self.workers] if p.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def running_locust(run: LocustRun, env: dict[str, str]) -> Iterator[RunningLocust]:
    """The started Locust processes, stopped on the way out however the run ends (an
    interrupted `load` leaves no orphan)."""
    running = start_locust(run, env)
    try:
        yield running
    finally:
        running.stop()


def start_locust(run: LocustRun, env: dict[str, str]) -> RunningLocust:
    """Start the master (or the standalone process) and the local workers."""
    run.out_dir.mkdir(parents=True, exist_ok=True)

    def start(command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (run.out_dir / log_name).open("wb") as log:
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    main = start(run.main_command(), "locust-master.log" if run.local_workers else "locust.log")
    running = RunningLocust(run, main)
    try:
        for number in range(run.local_workers):
            running.workers.append(start(run.worker_command(), f"locust-worker-{number + 1}.log"))
    except BaseException:  # OSError, or an interruption between two starts
        running.kill()
        raise
    return running


def progress_line(csv_prefix: Path, elapsed: float) -> str:
    """One line from Locust's live CSV stats (rewritten every second by the master)."""
    stats = Path(f"{csv_prefix}_stats.csv")
    aggregated: dict[str, str] = {}
    if stats.exists():
        with stats.open(newline="") as file:
            for row in csv.DictReader(file):
                if row.get("Name") == "Aggregated":
                    aggregated = row
    if not aggregated:
        return f"[{elapsed:6.1f}s] starting Locust"
    return (
        f"[{elapsed:6.1f}s] requests {int(aggregated['Request Count']):,}  "
        f"failures {int(aggregated['Failure Count']):,}  "
        f"rps {float(aggregated['Requests/s']):,.1f}  "
        f"median {aggregated['Median Response Time']} ms"
    )
