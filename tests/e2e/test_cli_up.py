"""`dragonfly-harness up` (the README's `./dev up`) as a real process, with its demo."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

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
    assert "migrations: 4 applied now" in output
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
