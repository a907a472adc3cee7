"""The kinds of mutant: text edits of a function, a view or a trigger, SQL statements, and
edits of the workers' Python source.

Each SQL edit applies to the object's definition in the migrated template (pg_get_functiondef,
pg_get_viewdef, pg_get_triggerdef) and must match, so a migration that rewrites the object makes
its stale mutants fail loudly instead of passing quietly. A Python edit must match exactly once
in its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from reference.sqlfile import NamedQueries

access_sql = NamedQueries("harness", "access.sql")
QUEUE_SUITES = ("integration", "property")
Conn = psycopg.Connection[tuple[object, ...]]


class MutantError(RuntimeError):
    """A mutant no longer applies to the object it targets."""


@dataclass(frozen=True)
class Mutant:
    """A text edit of one function's definition; every occurrence of `find` is replaced."""

    name: str
    function: str  # a function of `schema`, by name
    find: str
    replace: str
    why: str  # what the mutant breaks, as a user would notice it
    suites: tuple[str, ...] = QUEUE_SUITES  # the suites of `python -m harness.mutants` to run
    kill: tuple[str, ...] = ()  # tests expected to kill it: run first in each suite but property
    schema: str = "ops"

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.function}"

    def apply(self, conn: Conn) -> None:
        """Replace the function on conn's database with its broken variant.

        Of a function's overloads (an old signature kept beside a new one), the one whose
        definition holds `find`; exactly one must.
        """
        rows = conn.execute(
            "SELECT pg_get_functiondef(p.oid) FROM pg_proc AS p "
            "JOIN pg_namespace AS n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = %s",
            (self.schema, self.function),
        ).fetchall()
        definitions = [str(row[0]) for row in rows if self.find in str(row[0])]
        if not definitions:
            raise MutantError(
                f"{self.name}: {self.find!r} is no longer in {self.target}; a migration "
                "changed it: update harness/mutants/catalogue.py"
            )
        if len(definitions) > 1:
            raise MutantError(
                f"{self.name}: {self.find!r} is in {len(definitions)} overloads of "
                f"{self.target}: make it match one"
            )
        conn.execute(definitions[0].replace(self.find, self.replace).encode())


def _edited(name: str, what: str, definition: str, find: str, replace: str) -> str:
    """`definition` with `find` replaced, or a MutantError naming the object a migration changed."""
    if find not in definition:
        raise MutantError(
            f"{name}: {find!r} is no longer in {what}; a migration changed it: "
            "update harness/mutants/objects.py"
        )
    return definition.replace(find, replace)


@dataclass(frozen=True)
class ViewMutant:
    """A text edit of a view's query (pg_get_viewdef), put back with CREATE OR REPLACE VIEW."""

    name: str
    view: str  # schema.name
    find: str
    replace: str
    why: str
    suites: tuple[str, ...] = ("schema",)
    kill: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.view

    def apply(self, conn: Conn) -> None:
        row = conn.execute("SELECT pg_get_viewdef(%s::regclass)", (self.view,)).fetchone()
        definition = str(row[0]) if row else ""
        edited = _edited(self.name, f"the view {self.view}", definition, self.find, self.replace)
        options = "WITH (security_invoker = true)"  # as every view of the schema
        conn.execute(f"CREATE OR REPLACE VIEW {self.view} {options} AS {edited}".encode())


@dataclass(frozen=True)
class TriggerMutant:
    """A text edit of a trigger's definition (pg_get_triggerdef): dropped and created again."""

    name: str
    trigger: str  # schema.name, the schema of its table
    table: str  # schema.table
    find: str
    replace: str
    why: str
    suites: tuple[str, ...] = ("schema",)
    kill: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.trigger

    def apply(self, conn: Conn) -> None:
        trigger = self.trigger.split(".", 1)[1]
        row = conn.execute(
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger AS t "
            "WHERE t.tgrelid = %s::regclass AND t.tgname = %s",
            (self.table, trigger),
        ).fetchone()
        definition = str(row[0]) if row else ""
        what = f"the trigger {self.trigger}"
        edited = _edited(self.name, what, definition, self.find, self.replace)
        conn.execute(f'DROP TRIGGER "{trigger}" ON {self.table}'.encode())
        conn.execute(edited.encode())


@dataclass(frozen=True)
class SqlMutant:
    """A mutant that runs statements: named `mutant_<name with _>` in harness/access.sql."""

    name: str
    why: str
    suites: tuple[str, ...] = ("access",)
    kill: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return "access: grants, row-level security and policies"

    def apply(self, conn: Conn) -> None:
        conn.execute(access_sql("mutant_" + self.name.replace("-", "_")))


@dataclass(frozen=True)
class PyMutant:
    """An exact-string edit of one file of the `reference` package (applied to a copy)."""

    name: str
    file: str  # relative to the repository root, e.g. reference/workers/lease.py
    find: str
    replace: str
    why: str
    suites: tuple[str, ...] = ("workers",)
    kill: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.file

    def apply(self, conn: Conn) -> None:
        """Nothing in SQL: the runner edits a copy of the package (`edit`)."""

    def edit(self, root: Path) -> None:
        """Edit the copy of the package under `root`; the text must match exactly once."""
        path = root / self.file
        text = path.read_text()
        found = text.count(self.find)
        if found != 1:
            where = "not found" if found == 0 else f"found {found} times"
            raise MutantError(
                f"mutant {self.name}: the text to replace is {where} in {self.file}: "
                f"{self.find!r}; update harness/mutants/pysource.py"
            )
        path.write_text(text.replace(self.find, self.replace))
