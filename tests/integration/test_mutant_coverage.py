"""Every function, view and trigger of the migrated schemas has a mutant (fast).

`python -m harness.mutants` proves the suites catch a broken object only for the objects it
mutates; an object added without a mutant (or a documented reason in `objects.EQUIVALENT`) is a
part of the contract no suite is shown to guard.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.mutants.catalogue import ALL_MUTANTS, MutantError
from harness.mutants.kinds import PyMutant, SqlMutant
from harness.mutants.objects import EQUIVALENT
from harness.mutants.pysource import PY_MUTANTS

REPO = Path(__file__).resolve().parents[2]

SCHEMAS = ("ops", "enforcement", "public")
CONTRACT_OBJECTS = """
SELECT n.nspname || '.' || p.proname, 'function'
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = ANY (%(schemas)s)
  AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION
SELECT n.nspname || '.' || c.relname, 'view'
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('v', 'm')
  AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype = 'e')
UNION
SELECT n.nspname || '.' || t.tgname, 'trigger'
FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal
ORDER BY 1
"""


def contract_objects(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute(CONTRACT_OBJECTS, {"schemas": list(SCHEMAS)}).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def test_every_function_view_and_trigger_has_a_mutant_or_a_reason(
    db_conn: psycopg.Connection[Any],
) -> None:
    objects = contract_objects(db_conn)
    assert len(objects) >= 25, objects  # the query finds the schema's objects at all
    mutated = {m.target for m in ALL_MUTANTS if not isinstance(m, (SqlMutant, PyMutant))}
    missing = [
        f"{name} ({kind})"
        for name, kind in objects.items()
        if name not in mutated and name not in EQUIVALENT
    ]
    assert not missing, "no mutant and no reason in harness/mutants/objects.py:\n" + "\n".join(
        missing
    )
    unknown = sorted((mutated | set(EQUIVALENT)) - set(objects))
    assert not unknown, f"mutants of objects the schema does not have: {unknown}"
    both = sorted(mutated & set(EQUIVALENT))
    assert not both, f"objects with a live mutant and a reason to have none: {both}"
    kinds = sorted(set(objects.values()))
    counts = ", ".join(f"{sum(k == kind for k in objects.values())} {kind}s" for kind in kinds)
    print(
        f"mutant coverage: {len(objects)} objects of {', '.join(SCHEMAS)} ({counts}): "
        f"{len(objects) - len(EQUIVALENT)} with a mutant, {len(EQUIVALENT)} with a reason"
    )


def test_every_sql_mutant_applies_to_todays_schema(db_conn: psycopg.Connection[Any]) -> None:
    stale = []
    for mutant in ALL_MUTANTS:
        if isinstance(mutant, (SqlMutant, PyMutant)):
            continue
        with db_conn.transaction(force_rollback=True):  # each on the real SQL, then undone
            try:
                mutant.apply(db_conn)
            except MutantError as error:
                stale.append(str(error))
    assert not stale, "\n".join(stale)
    names = [m.name for m in ALL_MUTANTS]
    assert len(set(names)) == len(names), "mutant names must be unique"


def test_every_python_mutant_edits_its_file_exactly_once(tmp_path: Path) -> None:
    """A rewrite of a worker file makes its stale mutants fail here, naming them."""
    stale = []
    for mutant in PY_MUTANTS:
        root = tmp_path / mutant.name
        shutil.copytree(REPO / "reference", root / "reference")
        try:
            mutant.edit(root)
        except MutantError as error:
            stale.append(str(error))
            continue
        assert (root / mutant.file).read_text() != (REPO / mutant.file).read_text()
    assert not stale, "\n".join(stale)


def test_a_python_mutant_whose_text_is_gone_fails_loudly(tmp_path: Path) -> None:
    gone = dataclasses.replace(PY_MUTANTS[0], find="no such line\n")
    shutil.copytree(REPO / "reference", tmp_path / "reference")
    with pytest.raises(MutantError, match="the text to replace is not found in reference/"):
        gone.edit(tmp_path)


def test_every_named_killer_exists() -> None:
    """A mutant's `kill` tests run first; a renamed test would quietly drop out of that order."""
    missing = []
    for mutant in ALL_MUTANTS:
        for node in mutant.kill:
            path, _, name = node.partition("::")
            source = REPO / path
            if not source.is_file() or (
                name and f"def {name.split('[')[0]}(" not in source.read_text()
            ):
                missing.append(f"{mutant.name}: {node}")
    assert not missing, "\n".join(missing)
