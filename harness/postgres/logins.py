"""Least-privileged login users for the services, as a deployment would create them.

Migration 0015 creates the group roles `dragonfly_worker` and `dragonfly_api` (NOLOGIN); the
harness makes one login user per service in each group, with a random password, so the workers,
the API and the tests that stand in for them connect with exactly the grants production has: a
missing grant fails a test, not a deploy. Roles are cluster-wide, so the names carry the test
session's prefix (two sessions may share one external server) and are dropped at the end.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from harness.postgres.server import DatabaseUrl, as_url
from reference.sqlfile import NamedQueries

query = NamedQueries("harness", "access.sql")
SERVICES = {"worker": "dragonfly_worker", "api": "dragonfly_api"}


@dataclass(frozen=True)
class ServiceLogins:
    """A login user per service (worker, api) and its password."""

    users: dict[str, str]
    passwords: dict[str, str] = field(repr=False)

    def url(self, database_url: str, service: str) -> DatabaseUrl:
        """database_url with this service's user and password instead of the admin's."""
        conninfo = make_conninfo(
            database_url, user=self.users[service], password=self.passwords[service]
        )
        return as_url(conninfo)

    def urls(self, database_url: str) -> dict[str, str]:
        """ReferenceStack.service_urls: each service's URL for database_url."""
        return {service: str(self.url(database_url, service)) for service in self.users}

    def secrets(self) -> list[str]:
        return list(self.passwords.values())


def create_service_logins(admin: psycopg.Connection[Any], prefix: str) -> ServiceLogins | None:
    """A login user in each service's group role; None when the group roles do not exist
    (a database migrated without 0015, e.g. --pg-template with a schema of your own)."""
    row = admin.execute(query("group_roles_present")).fetchone()
    if not row or row[0] != len(SERVICES):
        return None
    users, passwords = {}, {}
    for service, group in SERVICES.items():
        users[service] = f"{prefix}_{service}"
        passwords[service] = secrets.token_urlsafe(18)
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(users[service]),
                sql.Literal(passwords[service]),
                sql.Identifier(group),
            )
        )
    return ServiceLogins(users, passwords)


def drop_service_logins(admin: psycopg.Connection[Any], logins: ServiceLogins) -> None:
    for user in logins.users.values():
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


def open_service_logins(conninfo: str) -> ServiceLogins | None:
    """Login users for `dragonfly-harness up` and the local stack, on the server at conninfo.

    None when the server's user may not create roles (then the services use conninfo's user).
    """
    prefix = f"dragonfly_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        try:
            return create_service_logins(admin, prefix)
        except psycopg.errors.InsufficientPrivilege:
            return None


def close_service_logins(conninfo: str, logins: ServiceLogins | None) -> None:
    """Drop what open_service_logins created (nothing when the server is already gone)."""
    if logins is None:
        return
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
            drop_service_logins(admin, logins)
    except psycopg.OperationalError:
        pass
