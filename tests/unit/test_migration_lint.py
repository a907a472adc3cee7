"""The migration lint: squawk with justified ignores for the old files and none for new ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.schema.migration_lint import IGNORES, MIGRATIONS, lint

CONCURRENT_INDEX = (
    "-- dragonfly: no-transaction\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_queue_note_idx ON ops.job_queue (locked_by);\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the migrations, to add a new one to."""
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy)
    return copy


def test_the_committed_migrations_pass() -> None:
    assert lint() == []


def test_a_plain_index_on_an_existing_table_in_a_new_migration_fails(folder: Path) -> None:
    (folder / "0099_note_index.sql").write_text(
        "CREATE INDEX job_queue_locked_by_idx ON ops.job_queue (locked_by);\n"
    )
    problems = lint(folder)
    assert len(problems) == 1, problems
    assert problems[0].startswith("0099_note_index.sql:1: require-concurrent-index-creation")


def test_a_concurrent_index_passes_only_in_a_no_transaction_file(folder: Path) -> None:
    (folder / "0099_note_index.sql").write_text(CONCURRENT_INDEX)
    assert lint(folder) == []

    (folder / "0099_note_index.sql").write_text(CONCURRENT_INDEX.split("\n", 1)[1])
    problems = lint(folder)
    assert problems == [
        "0099_note_index.sql: CONCURRENTLY cannot run in the transaction the migrator wraps this "
        "file in; make its first line exactly `-- dragonfly: no-transaction` (one statement per "
        "file)"
    ]


def test_a_new_migration_gets_no_ignore(folder: Path, tmp_path: Path) -> None:
    (folder / "0099_note_index.sql").write_text(
        "-- squawk-ignore require-concurrent-index-creation\n"
        "CREATE INDEX job_queue_locked_by_idx ON ops.job_queue (locked_by);\n"
    )
    ignores = tmp_path / "ignores.toml"
    ignores.write_text(
        IGNORES.read_text() + '\n[[ignore]]\nfile = "0099_note_index.sql"\nline = 2\n'
        'rule = "require-concurrent-index-creation"\nreason = "small table"\n'
    )
    problems = lint(folder, ignores)
    assert any("an ignore for 0099_note_index.sql" in p for p in problems), problems
    assert any("0099_note_index.sql: has a squawk-ignore comment" in p for p in problems), problems


def test_an_ignore_without_a_reason_or_without_its_warning_fails(tmp_path: Path) -> None:
    ignores = tmp_path / "ignores.toml"
    ignores.write_text(
        IGNORES.read_text().replace(
            'reason = "priority is a small ordering weight, never near 2^31"', 'reason = ""'
        )
        + '\n[[ignore]]\nfile = "0002_queue_functions.sql"\nline = 1\n'
        'rule = "prefer-bigint-over-int"\nreason = "stale"\n'
    )
    problems = lint(ignores=ignores)
    assert any("has no reason" in p for p in problems), problems
    assert any("0001_job_queue.sql:25: prefer-bigint-over-int" in p for p in problems), problems
    assert any("matches no squawk warning any more" in p for p in problems), problems
