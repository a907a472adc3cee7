"""Which deployment a tool tests: the one module smoke, load and the contract suite select with.

Every tool takes the same options, each with its variable (the option wins):

| option            | variable                                                   |
|-------------------|------------------------------------------------------------|
| --mode            | SUPABASE_MODE (dev/prod): which _DEV/_PROD variables apply |
| --api-url         | DRAGONFLY_TARGET_API_URL                                   |
| --db-url          | DRAGONFLY_TARGET_DB_URL, else SUPABASE_DB_URL_<MODE>       |
| --supabase-url    | SUPABASE_URL_<MODE> (key: SUPABASE_SERVICE_ROLE_KEY_<MODE>)|
| --dashboard-url   | DRAGONFLY_TARGET_DASHBOARD_URL                             |
| --api-key         | DRAGONFLY_API_KEY                                          |
| --allow-writes    | (none): a named target is read-only unless this is given   |

With none of the URLs given, the target is *local*: the tool starts the reference stack itself
on an embedded Postgres, and may write there freely. Secrets (keys, database passwords) are
SecretStr here and `mask()` removes them from any text before it is shown.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from harness.postgres.external import masked
from reference.masking import masker


class Mode(StrEnum):
    DEV = "dev"
    PROD = "prod"


class TargetError(ValueError):
    """The target options or variables are unusable; the message names the fix."""


class WritesNotAllowedError(TargetError):
    """A tool was about to write to a named target without --allow-writes."""


API_URL_ENV = "DRAGONFLY_TARGET_API_URL"
DB_URL_ENV = "DRAGONFLY_TARGET_DB_URL"
DASHBOARD_URL_ENV = "DRAGONFLY_TARGET_DASHBOARD_URL"
API_KEY_ENV = "DRAGONFLY_API_KEY"
MODE_ENV = "SUPABASE_MODE"


def _secret(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _http_url(name: str, value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"{name}: {value!r} is not an http(s) URL, e.g. https://api.example.com")
    return value.rstrip("/")


@dataclass(frozen=True)
class Target:
    """A deployment (or, when nothing is named, the local reference stack) and its secrets."""

    mode: Mode = Mode.DEV
    api_url: str | None = None
    db_url: SecretStr | None = None
    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    dashboard_url: str | None = None
    api_key: SecretStr | None = None
    allow_writes: bool = False
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # option -> where from

    @property
    def is_local(self) -> bool:
        """Nothing named: the tool starts the reference stack itself."""
        return not (self.api_url or self.db_url or self.supabase_url or self.dashboard_url)

    @property
    def is_prod(self) -> bool:
        return self.mode is Mode.PROD

    @property
    def may_write(self) -> bool:
        return self.is_local or self.allow_writes

    def db_url_value(self) -> str | None:
        return _plain(self.db_url)

    def api_key_value(self) -> str | None:
        return _plain(self.api_key)

    def supabase_key_value(self) -> str | None:
        return _plain(self.supabase_key)

    def secrets(self) -> list[str]:
        """Every secret value this target holds (for masking and for audits)."""
        values = [_plain(s) for s in (self.db_url, self.supabase_key, self.api_key)]
        found = [v for v in values if v]
        if self.db_url is not None:
            password = _password(self.db_url.get_secret_value())
            if password:
                found.append(password)
        return found

    def mask(self, text: str) -> str:
        """`text` with every secret of this target replaced by ***."""
        return masker(self.secrets())(text)

    def require_writes(self, what: str) -> None:
        """Raise unless writing is allowed; `what` says what would be written."""
        if not self.may_write:
            raise WritesNotAllowedError(
                f"{what} writes to the named target {self.describe()}, which is read-only by "
                "default: pass --allow-writes to allow it"
            )

    def write_warning(self) -> str | None:
        """The loud line a tool prints before it writes to a prod target."""
        if self.is_prod and not self.is_local and self.allow_writes:
            return f"WARNING: writing to the PROD target {self.describe()} (--allow-writes given)"
        return None

    def describe(self) -> str:
        """One line naming the target, without secrets."""
        if self.is_local:
            return "the local reference stack (embedded Postgres)"
        parts = [f"mode={self.mode.value}"]
        if self.api_url:
            parts.append(f"api={self.api_url}")
        if self.db_url is not None:
            parts.append(f"db={masked(self.db_url.get_secret_value())}")
        if self.supabase_url:
            parts.append(f"supabase={self.supabase_url}")
        if self.dashboard_url:
            parts.append(f"dashboard={self.dashboard_url}")
        return " ".join(parts)


def _password(dsn: str) -> str | None:
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:  # unparseable: no password we can find
        return None
    return str(password) if password else None


# (option, help) of every valued target option; each defaults to its variable.
TARGET_OPTIONS = (
    ("--mode", f"dev or prod (default: ${MODE_ENV} or dev)"),
    ("--api-url", f"the deployed API's base URL (default: ${API_URL_ENV})"),
    ("--db-url", f"direct Postgres URL (default: ${DB_URL_ENV}, else $SUPABASE_DB_URL_<MODE>)"),
    ("--supabase-url", "Supabase REST endpoint (default: $SUPABASE_URL_<MODE>)"),
    ("--dashboard-url", f"the deployed dashboard (default: ${DASHBOARD_URL_ENV})"),
    ("--api-key", f"key for write endpoints (default: ${API_KEY_ENV})"),
)
ALLOW_WRITES_HELP = "let this run write to a named target (read-only by default)"


def add_target_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The target options, each defaulting to its variable."""
    for option, text in TARGET_OPTIONS:
        parser.add_argument(option, help=text)
    parser.add_argument("--allow-writes", action="store_true", help=ALLOW_WRITES_HELP)


def resolve_target(
    options: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> Target:
    """The target from parsed options (argparse's `vars(args)` or pytest's) and the variables."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}

    def pick(option: str, *variables: str) -> str | None:
        value = options.get(option.replace("-", "_"))
        if value:
            sources[option] = f"--{option}"
            return str(value).strip()
        for variable in variables:
            if env.get(variable, "").strip():
                sources[option] = variable
                return env[variable].strip()
        return None

    raw_mode = (pick("mode", MODE_ENV) or Mode.DEV.value).lower()
    try:
        mode = Mode(raw_mode)
    except ValueError:
        raise TargetError(
            f"--mode / {MODE_ENV}: {raw_mode!r} is not dev or prod; set SUPABASE_MODE=dev or "
            "SUPABASE_MODE=prod"
        ) from None
    suffix = mode.value.upper()
    return Target(
        mode=mode,
        api_url=_http_url("--api-url", pick("api-url", API_URL_ENV)),
        db_url=_secret(pick("db-url", DB_URL_ENV, f"SUPABASE_DB_URL_{suffix}")),
        supabase_url=_http_url("--supabase-url", pick("supabase-url", f"SUPABASE_URL_{suffix}")),
        supabase_key=_secret(env.get(f"SUPABASE_SERVICE_ROLE_KEY_{suffix}", "").strip() or None),
        dashboard_url=_http_url("--dashboard-url", pick("dashboard-url", DASHBOARD_URL_ENV)),
        api_key=_secret(pick("api-key", API_KEY_ENV)),
        allow_writes=bool(options.get("allow_writes")),
        sources=sources,
    )
