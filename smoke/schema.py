"""The schema the migrations build, as a committed manifest, and the target compared with it.

`schema_manifest.json` lists every table, column (with its type), view, index (its definition),
trigger, function (with its argument types) and enum label that the packaged migrations
(`reference/db/migrations`) create in schemas ops and enforcement and the project's tables in
public, every job type they register, and every migration. It is generated from a migrated
database, because smoke itself only reads and may run where no scratch database exists;
`tests/smoke/test_smoke_schema.py` fails when it is out of date and regenerates it with
`DRAGONFLY_UPDATE_SCHEMA_MANIFEST=1`; `python -m smoke.schema --db-url URL [--write]` prints
(or writes) the manifest of any migrated database.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smoke.database import SmokeDatabase

MANIFEST_PATH = Path(__file__).with_name("schema_manifest.json")
REGENERATE = (
    "DRAGONFLY_UPDATE_SCHEMA_MANIFEST=1 .venv/bin/pytest tests/smoke/test_smoke_schema.py "
    "-k up_to_date"
)
SHOWN = 12  # missing pieces named in the check's one-line detail; the rest are counted
# The kinds that belong to a table: not named one by one when the table itself is missing.
PARTS_OF_TABLES = {"column", "index", "trigger"}

Manifest = dict[str, Any]


def _objects(db: SmokeDatabase) -> dict[str, list[str]]:
    objects: dict[str, set[str]] = {}
    for kind, identity in db.rows("schema_objects"):
        objects.setdefault(kind, set()).add(identity)
    if "ops.job_types" in objects.get("table", set()):
        objects["job type"] = set(db.column("known_job_types"))
    return {kind: sorted(names) for kind, names in sorted(objects.items())}


def manifest_of(db: SmokeDatabase) -> Manifest:
    """The manifest of the database `db` reaches (a migrated one, to generate the file)."""
    objects = _objects(db)
    recorded = "ops.schema_migrations" in objects.get("table", [])
    return {"migrations": db.column("recorded_migrations") if recorded else [], "objects": objects}


def dump_manifest(manifest: Manifest) -> str:
    note = {"regenerate with": REGENERATE}
    return json.dumps({**note, **manifest}, indent=1, sort_keys=False) + "\n"


def load_manifest() -> Manifest:
    loaded: Manifest = json.loads(MANIFEST_PATH.read_text("utf-8"))
    loaded.pop("regenerate with", None)
    return loaded


def _table_of(kind: str, identity: str) -> str:
    if kind == "column":
        return identity.rsplit(".", 1)[0]
    if kind == "trigger":
        return identity.rsplit(" ON ", 1)[1]
    return identity.split(" ON ", 1)[1].split(" ", 1)[0]  # CREATE [UNIQUE] INDEX x ON t USING...


def missing(expected: Manifest, found: Manifest) -> list[str]:
    """What the target lacks, in the manifest's order; a missing table's parts go unnamed."""
    lost: list[str] = []
    tables = set(found["objects"].get("table", []))
    absent_tables = set(expected["objects"].get("table", [])) - tables
    for kind, identities in expected["objects"].items():
        present = set(found["objects"].get(kind, []))
        for identity in identities:
            if identity in present:
                continue
            if kind in PARTS_OF_TABLES and _table_of(kind, identity) in absent_tables:
                continue
            lost.append(f"{kind} {identity}")
    recorded = set(found["migrations"])
    lost += [
        f"migration {name} is not recorded in ops.schema_migrations"
        for name in expected["migrations"]
        if name not in recorded
    ]
    return lost


def describe_missing(lost: list[str]) -> str:
    shown = "; ".join(lost[:SHOWN])
    more = f"; and {len(lost) - SHOWN} more" if len(lost) > SHOWN else ""
    return (
        f"missing: {shown}{more} — apply the migrations in reference/db/migrations to this database"
    )


def main(argv: Sequence[str] | None = None) -> int:
    command = argparse.ArgumentParser(prog="python -m smoke.schema", description=__doc__)
    command.add_argument(
        "--db-url", required=True, help="a database the migrations were applied to"
    )
    command.add_argument("--write", action="store_true", help=f"write {MANIFEST_PATH.name}")
    args = command.parse_args(argv)
    with SmokeDatabase.connect(args.db_url, statement_timeout=60) as db:
        text = dump_manifest(manifest_of(db))
    if args.write:
        MANIFEST_PATH.write_text(text, "utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
