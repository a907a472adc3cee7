"""The config check: this mode's variables are present, well-formed, and not the other mode's."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from smoke.context import SmokeContext
from smoke.runner import CheckFailedError

SUPABASE_HOST_SUFFIXES = (".supabase.co", ".supabase.in")


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _project_ref(url: str | None) -> str | None:
    """The Supabase project ref of https://<ref>.supabase.co (None for other hosts)."""
    host = (urlsplit(url).hostname or "") if url else ""
    for suffix in SUPABASE_HOST_SUFFIXES:
        if host.endswith(suffix):
            return host.removesuffix(suffix).split(".")[-1]
    return None


def _db_parts(dsn: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        return {}


def _db_where(parts: dict[str, str]) -> tuple[str, str, str]:
    return (parts.get("host", ""), parts.get("port", "5432"), parts.get("dbname", ""))


def _db_project_ref(parts: dict[str, str]) -> str | None:
    """db.<ref>.supabase.co, or the pooler's user postgres.<ref>."""
    host, user = parts.get("host", ""), parts.get("user", "")
    if host.startswith("db.") and host.endswith(SUPABASE_HOST_SUFFIXES):
        return host.split(".")[1]
    if host.endswith(".supabase.com") and "." in user:
        return user.split(".", 1)[1]
    return None


def _jwt_claims(key: str) -> dict[str, object] | None:
    pieces = key.split(".")
    if len(pieces) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(pieces[1] + "=" * (-len(pieces[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _key_problems(var: str, key: str, url_ref: str | None) -> list[str]:
    if key != key.strip() or any(ch.isspace() for ch in key):
        return [f"{var} contains whitespace: paste the key again without spaces or line breaks"]
    if key.startswith("sb_secret_"):
        return []
    if key.startswith("sb_publishable_"):
        return [f"{var} holds a publishable key; it needs the secret (service-role) key"]
    claims = _jwt_claims(key)
    if claims is None:
        return [f"{var} is neither a JWT nor an sb_secret_ key: copy the service_role key again"]
    problems = []
    if claims.get("role") != "service_role":
        problems.append(
            f"{var} is a key with role {claims.get('role')!r}, not 'service_role': copy the "
            "service_role key (Supabase dashboard, Project Settings > API)"
        )
    key_ref = claims.get("ref")
    if url_ref and key_ref and key_ref != url_ref:
        problems.append(f"{var} belongs to project {key_ref!r}, but the URL is project {url_ref!r}")
    return problems


def _cross_mode_problems(ctx: SmokeContext, suffix: str, db: dict[str, str]) -> list[str]:
    """A prod target must not use dev's URLs, and a dev target not prod's."""
    other = "DEV" if suffix == "PROD" else "PROD"
    problems = []
    other_url = ctx.env.get(f"SUPABASE_URL_{other}", "").strip()
    same_url = other_url and _origin(other_url) == _origin(ctx.supabase_url)
    same_ref = _project_ref(other_url) and _project_ref(other_url) == _project_ref(ctx.supabase_url)
    if same_url or same_ref:
        problems.append(
            f"the {suffix.lower()} target's Supabase URL {ctx.supabase_url} is "
            f"SUPABASE_URL_{other}'s project: set SUPABASE_URL_{suffix} to the {suffix.lower()} "
            "project"
        )
    other_db = _db_parts(ctx.env.get(f"SUPABASE_DB_URL_{other}", "").strip())
    if db and other_db and _db_where(db) == _db_where(other_db):
        host, port, name = _db_where(db)
        problems.append(
            f"the {suffix.lower()} target's database {host}:{port}/{name} is "
            f"SUPABASE_DB_URL_{other}'s: point the database URL at the {suffix.lower()} database"
        )
    return problems


def check_config(ctx: SmokeContext) -> str:
    suffix = ctx.mode.value.upper()
    if ctx.is_local:
        return f"local reference stack, mode {ctx.mode.value}: no deployment variables needed"
    key_var = f"SUPABASE_SERVICE_ROLE_KEY_{suffix}"
    required = {
        f"SUPABASE_URL_{suffix} (or --supabase-url)": ctx.supabase_url,
        key_var: ctx.supabase_key,
        f"SUPABASE_DB_URL_{suffix} (or DRAGONFLY_TARGET_DB_URL, --db-url)": ctx.db_url,
        "DRAGONFLY_TARGET_API_URL (or --api-url)": ctx.api_url,
    }
    problems = [f"{name} is not set" for name, value in required.items() if not value]
    db = _db_parts(ctx.db_url) if ctx.db_url else {}
    if ctx.db_url and (not db or ("://" in ctx.db_url and not ctx.db_url.startswith("postgres"))):
        problems.append(
            "the database URL is not a postgresql:// URL or libpq key=value string: "
            "e.g. postgresql://user:password@host:5432/postgres"
        )
    url_ref = _project_ref(ctx.supabase_url)
    if ctx.supabase_key:
        problems += _key_problems(key_var, ctx.supabase_key, url_ref)
    db_ref = _db_project_ref(db)
    if url_ref and db_ref and url_ref != db_ref:
        problems.append(
            f"the database URL is project {db_ref!r} but the Supabase URL is project {url_ref!r}"
        )
    problems += _cross_mode_problems(ctx, suffix, db)
    if problems:
        raise CheckFailedError(f"mode {ctx.mode.value}: " + "; ".join(problems))
    return f"mode {ctx.mode.value}: Supabase URL, service-role key, database and API URL set"
