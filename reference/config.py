"""Process configuration: parsed once from the environment, then passed in explicitly."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from enum import StrEnum
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from reference.masking import MASK
from reference.pooling import PreparedStatements, connect_kwargs

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB
MAX_WORKER_CONCURRENCY = 32  # jobs one worker runs at once: each takes two connections
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
OtelExporter = Literal["otlp", "console", "none"]
_DSN_EXAMPLE = "postgresql://user:password@host:5432/dbname"
_SECRET_PARAMETERS = ("password", "sslpassword")  # libpq parameters that hold a secret
UNREADABLE_DSN = "(a connection string libpq cannot read; hidden)"


class SupabaseMode(StrEnum):
    DEV = "dev"
    PROD = "prod"


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class ConfigError(Exception):
    """The configuration is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _dsn_parameters(dsn: str) -> dict[str, str] | None:
    """libpq's reading of a URL or key=value DSN; None when libpq cannot read it."""
    try:
        parameters = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError:  # its message quotes the DSN: never pass it on
        return None
    # An unescaped "@" in a URL's password leaves the password's tail in the host.
    return None if "@" in parameters.get("host", "") else parameters


def mask_dsn(dsn: str) -> str:
    """The DSN as libpq reads it (key=value form), passwords replaced by ***.

    A string libpq cannot read is not shown at all: where it holds a password is unknowable.
    """
    parameters = _dsn_parameters(dsn)
    if parameters is None:
        return UNREADABLE_DSN
    for key in _SECRET_PARAMETERS:
        if key in parameters:
            parameters[key] = MASK
    return make_conninfo("", **parameters)


# The variables load_settings() was given; None: the process environment.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("dragonfly_environ", default=None)


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a mapping (default: the process environment),
    where a blank value is unset and surrounding whitespace is dropped."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None) -> None:
        self.environ = os.environ if environ is None else environ
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = self.environ.items()
        return {name.lower(): value.strip() for name, value in environ if value.strip()}


class Settings(BaseSettings):
    """Every setting of the API and workers; secrets are SecretStr and never printed.

    pydantic-settings reads the process environment (a blank variable counts as unset);
    load_settings() turns its errors into one line per problem.
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        str_strip_whitespace=True,
    )

    supabase_mode: SupabaseMode = Field(SupabaseMode.DEV, description="Picks the _DEV/_PROD vars.")
    supabase_url_dev: str | None = Field(None, description="Supabase REST base URL (dev).")
    supabase_service_role_key_dev: SecretStr | None = None
    supabase_db_url_dev: SecretStr | None = Field(None, description="Postgres DSN (dev).")
    supabase_url_prod: str | None = Field(None, description="Supabase REST base URL (prod).")
    supabase_service_role_key_prod: SecretStr | None = None
    supabase_db_url_prod: SecretStr | None = Field(None, description="Postgres DSN (prod).")
    database_url_override: SecretStr | None = Field(
        None,
        validation_alias="database_url",
        description="DATABASE_URL: when set, wins over SUPABASE_DB_URL_<MODE> (local runs, tests).",
    )
    database_prepared_statements: PreparedStatements = Field(
        PreparedStatements.AUTO,
        description="DATABASE_PREPARED_STATEMENTS: auto (off for Supabase's transaction pooler, "
        "port 6543 or a *.pooler.supabase.com host; on otherwise), on, or off (any other "
        "transaction pooler).",
    )
    environment: Environment = Environment.DEV
    log_level: LogLevel = "INFO"
    worker_poll_interval: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Idle poll seconds; None: worker default."
    )
    worker_job_timeout: float = Field(
        600.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds one job may run: the database cancels its transactions past it, "
        "the job fails naming the limit, and its lease is no longer extended.",
    )
    worker_heartbeat_interval: float = Field(
        15.0, gt=0, allow_inf_nan=False, description="Seconds between heartbeats (stale at 90)."
    )
    worker_lock_timeout: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a lease lasts unextended before it is reaped; None: the database's "
        "ops.default_lock_timeout() (30 minutes).",
    )
    worker_lease_extend_interval: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Seconds between extend_lock calls."
    )
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=MAX_WORKER_CONCURRENCY,
        description="Jobs a worker claims and runs at once: 1 settles each job and claims the "
        "next in one statement; more claims a batch and completes it with complete_jobs.",
    )
    retain_completed_jobs: float = Field(
        7 * 86400.0, gt=0, allow_inf_nan=False, description="Seconds a completed job is kept."
    )
    retain_dead_lettered_jobs: float = Field(
        30 * 86400.0, gt=0, allow_inf_nan=False, description="Seconds a dead-lettered job is kept."
    )
    retain_stopped_workers: float = Field(
        7 * 86400.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a heartbeat row is kept after its worker's last beat.",
    )
    port: int = Field(8888, ge=1, le=65535, description="API port.")
    host: str = Field(
        "0.0.0.0",  # noqa: S104 - the deployed API (Railway) must listen on every address
        min_length=1,
        description="HOST: address the API listens on; `dragonfly-harness up` uses 127.0.0.1.",
    )
    dragonfly_api_key: SecretStr | None = Field(
        None,
        description="Required in the X-DRAGONFLY-API-KEY header by write endpoints; "
        "when unset the API refuses every write request.",
    )
    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="Upload limit.")
    api_header_timeout: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a request head may take to arrive before the API answers 408.",
    )
    # The standard OpenTelemetry variables that pick exporters (the SDK itself reads the rest,
    # e.g. OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_SCHEDULE_DELAY).
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP base URL; when set, traces, metrics and logs default to otlp."
    )
    otel_traces_exporter: OtelExporter | None = None
    otel_metrics_exporter: OtelExporter | None = None
    otel_logs_exporter: OtelExporter | None = None
    # Read by the HTTP and DB instrumentations themselves; ours is a default a user can replace.
    otel_semconv_stability_opt_in: str = "http,database"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment (load_settings' mapping when it was given one).
        return (init_settings, _EnvironSource(settings_cls, _ENVIRON.get()))

    @field_validator("supabase_mode", "environment", "database_prepared_statements", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "otel_traces_exporter", "otel_metrics_exporter", "otel_logs_exporter", mode="before"
    )
    @classmethod
    def _lowercase_exporter(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _uppercase(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("supabase_url_dev", "supabase_url_prod")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("is not an http(s) URL")
        return value

    @field_validator("supabase_db_url_dev", "supabase_db_url_prod", "database_url_override")
    @classmethod
    def _check_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        # The message must never quote the value: it holds a password.
        if value is not None and _dsn_parameters(value.get_secret_value()) is None:
            raise ValueError(
                "is not a postgresql:// URL or libpq key=value string (in a URL, percent-encode "
                "@ : / # ? in the password, e.g. @ as %40)"
            )
        return value

    @field_validator("worker_lease_extend_interval")
    @classmethod
    def _check_extend_interval(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("worker_lock_timeout")
        if timeout is not None and value >= timeout:
            raise ValueError(
                f"must be shorter than WORKER_LOCK_TIMEOUT ({timeout:g} s), or the reaper takes "
                "running jobs back"
            )
        return value

    @model_validator(mode="after")
    def _check_required(self) -> Settings:
        problems = _missing(self.supabase_mode, lambda var: getattr(self, _FIELDS[var]) is not None)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def _prod(self) -> bool:
        return self.supabase_mode is SupabaseMode.PROD

    @property
    def supabase_url(self) -> str | None:
        return self.supabase_url_prod if self._prod else self.supabase_url_dev

    @property
    def supabase_service_role_key(self) -> SecretStr | None:
        return (
            self.supabase_service_role_key_prod
            if self._prod
            else self.supabase_service_role_key_dev
        )

    @property
    def database_url(self) -> str:
        """The DSN to connect with: DATABASE_URL, else the selected mode's SUPABASE_DB_URL."""
        dsn = self.database_url_override
        if dsn is None:
            dsn = self.supabase_db_url_prod if self._prod else self.supabase_db_url_dev
        if dsn is None:  # only reachable when validation was bypassed (model_construct)
            raise ConfigError(["DATABASE_URL: not set"])
        return dsn.get_secret_value()

    @property
    def database_connect_kwargs(self) -> dict[str, Any]:
        """psycopg.connect keyword arguments for database_url (no prepared statements behind a
        transaction pooler: see reference.pooling)."""
        return connect_kwargs(self.database_url, self.database_prepared_statements)

    @property
    def database_url_masked(self) -> str:
        return mask_dsn(self.database_url)


_FIELDS = {str(f.validation_alias or n).upper(): n for n, f in Settings.model_fields.items()}
_SECRETS = {
    str(f.validation_alias or n).upper()
    for n, f in Settings.model_fields.items()
    if SecretStr in get_args(f.annotation)
}
_FIXES = {
    "SUPABASE_MODE": "set SUPABASE_MODE=dev or SUPABASE_MODE=prod",
    "ENVIRONMENT": "set ENVIRONMENT=dev, ENVIRONMENT=staging or ENVIRONMENT=prod",
    "DATABASE_PREPARED_STATEMENTS": "set DATABASE_PREPARED_STATEMENTS=off behind a transaction "
    "pooler, on for a direct connection, or auto (the default: off for Supabase's pooler on 6543)",
    "LOG_LEVEL": "set LOG_LEVEL to one of DEBUG, INFO, WARNING, ERROR, CRITICAL (default INFO)",
    "PORT": "set PORT to a whole number from 1 to 65535, or unset it for 8888",
    "WORKER_POLL_INTERVAL": "set WORKER_POLL_INTERVAL to a positive number of seconds (e.g. 2.5), "
    "or unset it for each worker's default",
    **{
        var: f"set {var} to a positive number of seconds, or unset it for the default"
        for var in (
            "WORKER_JOB_TIMEOUT",
            "WORKER_HEARTBEAT_INTERVAL",
            "WORKER_LOCK_TIMEOUT",
            "WORKER_LEASE_EXTEND_INTERVAL",
            "RETAIN_COMPLETED_JOBS",
            "RETAIN_DEAD_LETTERED_JOBS",
            "RETAIN_STOPPED_WORKERS",
        )
    },
    "WORKER_CONCURRENCY": "set WORKER_CONCURRENCY to a whole number of jobs from 1 to "
    f"{MAX_WORKER_CONCURRENCY} (each runs on its own connection), or unset it for 1",
    "API_HEADER_TIMEOUT": "set API_HEADER_TIMEOUT to a positive number of seconds, "
    "or unset it for 10",
    "MAX_UPLOAD_BYTES": "set MAX_UPLOAD_BYTES to a positive whole number of bytes, "
    "or unset it for 10 MB (10485760)",
    **{
        f"OTEL_{kind}_EXPORTER": f"set OTEL_{kind}_EXPORTER to otlp, console or none"
        for kind in ("TRACES", "METRICS", "LOGS")
    },
}


def _fix(var: str) -> str:
    if var in _FIXES:
        return _FIXES[var]
    if var.startswith("SUPABASE_URL_"):
        return f"set {var} to the project's REST URL, e.g. https://<project-ref>.supabase.co"
    if var.startswith("SUPABASE_SERVICE_ROLE_KEY_"):
        return f"set {var} to the service-role key from the Supabase dashboard (Settings > API)"
    return f"set {var}={_DSN_EXAMPLE} (or a libpq 'host=... dbname=...' string)"


def _missing(mode: SupabaseMode, is_set: Callable[[str], bool]) -> list[str]:
    """Requirements that span variables: a database URL, and the Supabase trio used together."""
    if is_set("DATABASE_URL"):
        return []
    suffix = mode.value.upper()
    db, url, key = (f"SUPABASE_{kind}_{suffix}" for kind in ("DB_URL", "URL", "SERVICE_ROLE_KEY"))
    if not is_set(db):
        return [
            f"DATABASE_URL: no database configured (neither DATABASE_URL nor {db} is set) — "
            f"set DATABASE_URL={_DSN_EXAMPLE} for a local run, or set {db}, {url} and {key} "
            f"for SUPABASE_MODE={mode.value}"
        ]
    return [
        f"{var}: not set, but SUPABASE_MODE={mode.value} takes the database from {db}, which needs "
        f"{url} and {key} too — {_fix(var)}, or set DATABASE_URL for a local run"
        for var in (url, key)
        if not is_set(var)
    ]


def _describe(error: ErrorDetails, raw: Mapping[str, str]) -> str:
    var = str(error["loc"][0]).upper()
    if error["type"] in ("enum", "literal_error"):  # expected: "'a', 'b' or 'c'"
        choices = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        reason = "is not one of " + choices.replace(" or ", ", ")
    else:  # pydantic's wording, e.g. "Input should be greater than 0"
        reason = error["msg"].removeprefix("Value error, ").replace("Input should", "should")
    value = raw.get(var, "")
    # Secrets are never shown, nor a value that may carry credentials (user:password@host).
    shown = "the value (hidden)" if var in _SECRETS or "@" in value else repr(value)
    return f"{var}: {shown} {reason} — {_fix(var)}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `environ` (default: the process environment); raise ConfigError."""
    source = _EnvironSource(Settings, environ)
    raw = {
        var: value
        for name, value in source.env_vars.items()
        if (var := name.upper()) in _FIELDS and value is not None
    }
    token = _ENVIRON.set(environ)
    try:
        return Settings.model_validate({})  # pydantic-settings adds the environment
    except ValidationError as exc:
        # Never chain the ValidationError: its text quotes the input, secrets included.
        errors = exc.errors(include_url=False, include_input=False)
    finally:
        _ENVIRON.reset(token)
    problems = [_describe(error, raw) for error in errors if error["loc"]]
    mode = raw.get("SUPABASE_MODE", "dev").lower()
    if mode in {m.value for m in SupabaseMode}:
        problems += _missing(SupabaseMode(mode), raw.__contains__)
    raise ConfigError(list(dict.fromkeys(problems)))


def load_settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """Like load_settings, but print the problems to stderr and exit with status 2."""
    try:
        return load_settings(environ)
    except ConfigError as exc:
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        print(f"Configuration error:\n{lines}", file=sys.stderr)
    raise SystemExit(2)
