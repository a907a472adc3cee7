"""squawk on every migration: `python -m harness.schema.migration_lint` (run by `tox -e lint`).

Migrations applied before this lint (up to LAST_UNLINTED) may keep the warnings listed, each
with its reason, in reference/db/squawk-ignores.toml; every newer file must pass with none
(neither an entry there nor a `-- squawk-ignore` comment). Files marked
`-- dragonfly: no-transaction` are linted as running outside a transaction.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from reference.db import load_migrations

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "reference" / "db" / "migrations"
IGNORES = ROOT / "reference" / "db" / "squawk-ignores.toml"
CONFIG = ROOT / ".squawk.toml"
COMMENT = re.compile(r"--[^\n]*")
CONCURRENTLY = re.compile(r"\bconcurrently\b", re.IGNORECASE)
LAST_UNLINTED = 10  # the newest migration applied before squawk ran in lint


@dataclass(frozen=True)
class SquawkWarning:
    file: str
    line: int  # 1-based
    rule: str
    message: str

    def key(self) -> tuple[str, int, str]:
        return (self.file, self.line, self.rule)


def _squawk() -> str:
    beside = Path(sys.executable).with_name("squawk")
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if found is None:
        raise SystemExit("squawk is not installed: pip install -e '.[dev]' (squawk-cli)")
    return found


def run_squawk(files: list[Path], config: Path, *, in_transaction: bool) -> list[SquawkWarning]:
    """squawk's warnings on `files`, assuming each runs in a transaction or not."""
    if not files:
        return []
    transaction = "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"
    result = subprocess.run(
        [_squawk(), "--config", str(config), "--reporter", "json", transaction, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise SystemExit(f"squawk failed (exit {result.returncode}): {result.stderr.strip()}")
    return [
        SquawkWarning(Path(v["file"]).name, int(v["line"]) + 1, v["rule_name"], v["message"])
        for v in json.loads(result.stdout)
    ]


def lint(folder: Path = MIGRATIONS, ignores: Path = IGNORES, config: Path = CONFIG) -> list[str]:
    """Every problem found: unaccepted warnings, and ignores that are not allowed."""
    migrations = {f"{m.label}.sql": m for m in load_migrations(folder)}
    files = [folder / name for name in migrations]
    warnings = run_squawk(
        [f for f in files if migrations[f.name].transactional], config, in_transaction=True
    ) + run_squawk(
        [f for f in files if not migrations[f.name].transactional], config, in_transaction=False
    )
    entries = tomllib.loads(ignores.read_text()).get("ignore", []) if ignores.exists() else []
    problems = []
    accepted: set[tuple[str, int, str]] = set()
    for entry in entries:
        key = (str(entry.get("file")), int(entry.get("line", 0)), str(entry.get("rule")))
        migration = migrations.get(key[0])
        if migration is None or migration.version > LAST_UNLINTED:
            problems.append(
                f"{ignores.name}: an ignore for {key[0]}, which is not a migration applied "
                f"before this lint (0001-{LAST_UNLINTED:04d}); fix the migration instead"
            )
        elif not str(entry.get("reason", "")).strip():
            problems.append(f"{ignores.name}: the ignore of {key} has no reason; give one")
        else:
            accepted.add(key)
    found = {warning.key() for warning in warnings}
    problems += [
        f"{ignores.name}: the ignore of {key} matches no squawk warning any more; remove it"
        for key in sorted(accepted - found)
    ]
    problems += [
        f"{w.file}:{w.line}: {w.rule}: {w.message}" for w in warnings if w.key() not in accepted
    ]
    problems += [
        f"{name}: has a squawk-ignore comment; migrations after {LAST_UNLINTED:04d} pass squawk "
        "with none (make the change safe: see the README's Migrations section)"
        for name, migration in migrations.items()
        if migration.version > LAST_UNLINTED and "squawk-ignore" in migration.sql
    ]
    problems += [
        f"{name}: CONCURRENTLY cannot run in the transaction the migrator wraps this file in; "
        f"make its first line exactly `-- dragonfly: no-transaction` (one statement per file)"
        for name, migration in migrations.items()
        if migration.transactional and CONCURRENTLY.search(COMMENT.sub("", migration.sql))
    ]
    return problems


def main() -> int:
    problems = lint()
    for problem in problems:
        print(problem)
    count = len(list(MIGRATIONS.glob("*.sql")))
    print(
        f"squawk: {len(problems)} problem(s) in {count} migrations"
        if problems
        else f"squawk: {count} migrations clean (accepted warnings: {IGNORES.name})"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
