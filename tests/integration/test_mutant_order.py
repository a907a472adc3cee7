"""A mutant run keeps the tests in the order given, so the mutant's killers run first and the
same test kills it every time (pytest-randomly, on by default, would shuffle them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.mutants.__main__ import pytest_command
from harness.mutants.plugin import MUTANT_ENV, REPORT_ENV
from harness.postgres.server import PostgresServer

NAMES = [f"test_{letter}" for letter in "qwertyui"]


def run_in_order(command: list[str], tmp_path: Path, pg_server: PostgresServer) -> list[str]:
    env = {**os.environ, "DRAGONFLY_PG_URL": pg_server.conninfo, MUTANT_ENV: "",
           REPORT_ENV: str(tmp_path / "failures.txt")}  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return (tmp_path / "ran.txt").read_text().split()


def write_tests(tmp_path: Path) -> list[str]:
    body = "".join(
        f"def {name}():\n    with open('ran.txt', 'a') as ran:\n        ran.write('{name} ')\n\n\n"
        for name in NAMES
    )
    (tmp_path / "test_order.py").write_text(body)
    (tmp_path / "conftest.py").write_text(  # as tests/conftest.py: the `mutants` profile
        "from harness.plugin.hypothesis_profiles import register_profiles\n\nregister_profiles()\n"
    )
    return [f"test_order.py::{name}" for name in NAMES]


def test_the_tests_run_in_the_order_given(tmp_path: Path, pg_server: PostgresServer) -> None:
    command = pytest_command(write_tests(tmp_path), ["-x"], 19)

    assert run_in_order(command, tmp_path, pg_server) == NAMES


def test_with_pytest_randomly_on_the_same_run_is_shuffled(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    """The control: without `-p no:randomly` the order check fails (seeded: the same shuffle)."""
    command = pytest_command(write_tests(tmp_path), ["-x", "--randomly-seed=1"], 19)
    index = command.index("no:randomly")
    del command[index - 1 : index + 1]

    assert run_in_order(command, tmp_path, pg_server) != NAMES
