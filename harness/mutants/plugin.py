"""pytest plugin for one mutant run: `-p harness.mutants.plugin` with $DRAGONFLY_QUEUE_MUTANT set.

Applies the named mutant to the session's template before any test clones it, and writes the
failing tests' ids to $DRAGONFLY_MUTANT_REPORT, the first failure first.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from harness.mutants.catalogue import ALL_MUTANTS
from harness.postgres.databases import TestDatabases

MUTANT_ENV = "DRAGONFLY_QUEUE_MUTANT"
REPORT_ENV = "DRAGONFLY_MUTANT_REPORT"
PY_ROOT_ENV = "DRAGONFLY_PY_MUTANT_ROOT"  # a Python mutant: the dir of the mutated copy


def pytest_configure(config: pytest.Config) -> None:
    """A Python mutant's run must import the mutated copy, not the worktree's package."""
    root = os.environ.get(PY_ROOT_ENV)
    if root:
        reference = importlib.import_module("reference")
        if not str(Path(reference.__file__ or "").resolve()).startswith(str(Path(root).resolve())):
            raise pytest.UsageError(
                f"${PY_ROOT_ENV}: the mutated copy in {root} is not the `reference` imported "
                f"({reference.__file__})"
            )


def _allow_connections(databases: TestDatabases, allowed: bool) -> None:
    databases.admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(databases.template), sql.Literal(allowed)
        )
    )


@pytest.fixture(scope="session", autouse=True)
def queue_mutant(pg_databases: TestDatabases) -> str | None:
    """The mutant applied to the template (None: the suites run on the real SQL)."""
    name = os.environ.get(MUTANT_ENV) or None
    if name is not None:
        mutant = next((m for m in ALL_MUTANTS if m.name == name), None)
        if mutant is None:
            known = ", ".join(m.name for m in ALL_MUTANTS)
            raise pytest.UsageError(f"${MUTANT_ENV}: unknown mutant {name!r}; known: {known}")
        _allow_connections(pg_databases, True)
        try:
            # Direct, never pooled: a pooled server connection left on the template stops clones.
            conninfo = pg_databases.server.direct_conninfo_for(pg_databases.template)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                mutant.apply(conn)
        finally:
            _allow_connections(pg_databases, False)
    return name


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Append each failing test's id (the first line is the first failure)."""
    target = os.environ.get(REPORT_ENV)
    if report.failed and target:
        with Path(target).open("a") as failures:
            failures.write(report.nodeid + "\n")
