"""An interrupted `dragonfly-harness load` leaves no Locust process behind (loopback only).

The run would last minutes (no seeded jobs, so it never drains); the test signals the command
while its Locust master and worker run, then waits, bounded, for every one of them to be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.waiting import WaitTimeoutError, wait_until

RUN_TIME = 300  # seconds: far longer than the test; only the interruption may end the run
STARTUP_TIMEOUT = 90.0  # seconds for the command to start its Locust processes
EXIT_TIMEOUT = 60.0  # seconds for the interrupted command to exit
GONE_TIMEOUT = 30.0  # seconds for its Locust processes to be gone after it exited


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # exited while listed
                continue
            # The command name (field 2) may hold spaces and parentheses: split after it.
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return parents


def _alive_locust(pid: int) -> bool:
    """Whether `pid` is still a live (not zombie) Locust process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return state != "Z" and b"locust" in command


def _locust_descendants(root: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        frontier += children
        found += [pid for pid in children if _alive_locust(pid)]
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_load_run_leaves_no_locust_process(
    tmp_path: Path, database_url: str, signum: signal.Signals
) -> None:
    command = [
        sys.executable, "-m", "harness.cli", "load", "--out", str(tmp_path),
        "--db-url", database_url, "--allow-writes", "--master-bind-host", "127.0.0.1",
        "--users", "2", "--workers", "1", "--seed-jobs", "0", "--run-time", str(RUN_TIME),
    ]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONFLY_TARGET_")}
    load = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[int] = []
    try:
        # The master and its worker.
        seen = wait_until(
            "the load command's Locust master and worker",
            lambda: (found := _locust_descendants(load.pid)) and len(found) >= 2 and found,
            STARTUP_TIMEOUT,
            0.2,
        )
        load.send_signal(signum)
        output, _ = load.communicate(timeout=EXIT_TIMEOUT)
        assert load.returncode == 128 + signum, output
        assert f"load: {signum.name}: stopped" in output
        try:
            wait_until(
                "the Locust processes to be gone",
                lambda: not any(_alive_locust(pid) for pid in seen),
                GONE_TIMEOUT,
                0.2,
            )
        except WaitTimeoutError:
            left = [pid for pid in seen if _alive_locust(pid)]
            pytest.fail(f"{signum.name} left Locust processes {left} running:\n{output}")
    finally:
        for pid in [load.pid, *seen]:
            if pid == load.pid and load.poll() is not None:
                continue
            if pid == load.pid or _alive_locust(pid):
                os.kill(pid, signal.SIGKILL)
        load.wait(EXIT_TIMEOUT)
