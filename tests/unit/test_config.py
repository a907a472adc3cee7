"""Configuration parsing: defaults, mode selection, friendly errors, and secrets never shown."""

import os
import subprocess
import sys
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from reference.config import (
    DEFAULT_MAX_UPLOAD_BYTES,
    UNREADABLE_DSN,
    ConfigError,
    Environment,
    Settings,
    SupabaseMode,
    load_settings,
    load_settings_or_exit,
    mask_dsn,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DSN = "postgresql://app:app@localhost:5432/app"

PASSWORD = "s3cr3t-P@ss"
ESCAPED_PASSWORD = quote(PASSWORD, safe="")  # s3cr3t-P%40ss
SERVICE_KEY = "svc-R0LE-k3y-9f8e7d"
API_KEY = "dfly-4P1-k3y-1a2b3c"
SECRETS = (PASSWORD, ESCAPED_PASSWORD, SERVICE_KEY, API_KEY)
SECRET_DSN = f"postgresql://dragonfly:{ESCAPED_PASSWORD}@db.example.com:5432/dragonfly"


def supabase_env(mode: str, db_url: str = SECRET_DSN) -> dict[str, str]:
    """The three Supabase variables that operators set together for one mode."""
    suffix = mode.upper()
    return {
        f"SUPABASE_URL_{suffix}": f"https://{mode}-project.supabase.co",
        f"SUPABASE_SERVICE_ROLE_KEY_{suffix}": f"{SERVICE_KEY}-{mode}",
        f"SUPABASE_DB_URL_{suffix}": db_url,
    }


def config_error(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return caught.value


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_defaults_with_only_a_database_url() -> None:
    settings = load_settings({"DATABASE_URL": LOCAL_DSN})

    assert settings.supabase_mode is SupabaseMode.DEV
    assert settings.environment is Environment.DEV
    assert settings.log_level == "INFO"
    assert settings.worker_poll_interval is None
    assert settings.worker_job_timeout == 600.0  # 10 minutes: well below the 30-minute lease
    assert settings.port == 8888
    assert settings.dragonfly_api_key is None
    assert settings.max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES == 10 * 1024 * 1024
    assert settings.database_url == LOCAL_DSN
    assert settings.supabase_url is None
    assert settings.supabase_service_role_key is None


def test_parses_every_variable() -> None:
    env = {
        "DATABASE_URL": LOCAL_DSN,
        "ENVIRONMENT": "staging",
        "LOG_LEVEL": "debug",
        "WORKER_POLL_INTERVAL": "0.25",
        "WORKER_JOB_TIMEOUT": "90",
        "PORT": "9000",
        "DRAGONFLY_API_KEY": API_KEY,
        "MAX_UPLOAD_BYTES": "1024",
    }
    settings = load_settings(env)

    assert settings.environment is Environment.STAGING
    assert settings.log_level == "DEBUG"
    assert settings.worker_poll_interval == 0.25
    assert settings.worker_job_timeout == 90.0
    assert settings.port == 9000
    assert settings.dragonfly_api_key is not None
    assert settings.dragonfly_api_key.get_secret_value() == API_KEY
    assert settings.max_upload_bytes == 1024


def test_empty_values_count_as_unset() -> None:
    blank = ("SUPABASE_MODE", "ENVIRONMENT", "LOG_LEVEL", "WORKER_POLL_INTERVAL", "PORT")
    env = {name: "" for name in blank} | {"DRAGONFLY_API_KEY": "  ", "MAX_UPLOAD_BYTES": ""}
    settings = load_settings(env | {"DATABASE_URL": LOCAL_DSN, "SUPABASE_URL_DEV": ""})

    assert settings == load_settings({"DATABASE_URL": LOCAL_DSN})
    assert settings.dragonfly_api_key is None


@pytest.mark.parametrize("mode", ["dev", "prod"])
def test_mode_selects_its_own_supabase_variables(mode: str) -> None:
    other = "prod" if mode == "dev" else "dev"
    own_dsn = f"postgresql://app:pw@{mode}.example.com/app"
    env = supabase_env(mode, own_dsn) | supabase_env(other) | {"SUPABASE_MODE": mode}

    settings = load_settings(env)

    assert settings.supabase_mode == mode
    assert settings.database_url == own_dsn
    assert settings.supabase_url == f"https://{mode}-project.supabase.co"
    assert settings.supabase_service_role_key is not None
    assert settings.supabase_service_role_key.get_secret_value() == f"{SERVICE_KEY}-{mode}"


def test_mode_is_case_insensitive() -> None:
    settings = load_settings(supabase_env("prod") | {"SUPABASE_MODE": " PROD "})
    assert settings.supabase_mode is SupabaseMode.PROD


def test_database_url_wins_over_the_supabase_db_url() -> None:
    env = supabase_env("prod") | {"SUPABASE_MODE": "prod", "DATABASE_URL": LOCAL_DSN}

    settings = load_settings(env)

    assert settings.database_url == LOCAL_DSN
    assert settings.supabase_url == "https://prod-project.supabase.co"


def test_database_url_alone_is_enough_in_prod_mode() -> None:
    settings = load_settings({"SUPABASE_MODE": "prod", "DATABASE_URL": LOCAL_DSN})
    assert settings.database_url == LOCAL_DSN
    assert settings.supabase_url is None
    assert settings.supabase_service_role_key is None


@pytest.mark.parametrize(
    "dsn", ["postgres://app@localhost/app", "host=localhost port=5432 dbname=app user=app"]
)
def test_accepts_other_postgres_dsn_forms(dsn: str) -> None:
    assert load_settings({"DATABASE_URL": dsn}).database_url == dsn


def test_reads_the_process_environment_only_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", LOCAL_DSN)
    monkeypatch.setenv("PORT", "9123")

    assert load_settings().port == 9123
    assert "DATABASE_URL" in str(config_error({}))  # a mapping replaces the environment
    assert Settings().port == 9123  # pydantic-settings reads the environment itself
    assert Settings(port=8000).port == 8000  # arguments win over it


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        pytest.param(
            {"SUPABASE_MODE": "staging"},
            "SUPABASE_MODE",
            "SUPABASE_MODE: 'staging' is not one of dev, prod"
            " — set SUPABASE_MODE=dev or SUPABASE_MODE=prod",
            id="bad-mode",
        ),
        pytest.param(
            {"ENVIRONMENT": "qa"},
            "ENVIRONMENT",
            "'qa' is not one of dev, staging, prod — set ENVIRONMENT=dev",
            id="bad-environment",
        ),
        pytest.param(
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL",
            "'verbose' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            id="bad-log-level",
        ),
        pytest.param({"PORT": "abc"}, "PORT", "'abc' should be a valid integer", id="port-abc"),
        pytest.param(
            {"PORT": "0"}, "PORT", "'0' should be greater than or equal to 1", id="port-0"
        ),
        pytest.param(
            {"PORT": "70000"},
            "PORT",
            "'70000' should be less than or equal to 65535",
            id="port-70000",
        ),
        pytest.param(
            {"WORKER_POLL_INTERVAL": "-1"},
            "WORKER_POLL_INTERVAL",
            "'-1' should be greater than 0",
            id="poll-negative",
        ),
        pytest.param(
            {"WORKER_POLL_INTERVAL": "abc"},
            "WORKER_POLL_INTERVAL",
            "'abc' should be a valid number",
            id="poll-abc",
        ),
        pytest.param(
            {"WORKER_POLL_INTERVAL": "inf"},
            "WORKER_POLL_INTERVAL",
            "'inf' should be a finite number",
            id="poll-inf",
        ),
        pytest.param(
            {"WORKER_JOB_TIMEOUT": "0"},
            "WORKER_JOB_TIMEOUT",
            "'0' should be greater than 0",
            id="job-timeout-0",
        ),
        pytest.param(
            {"WORKER_JOB_TIMEOUT": "10m"},
            "WORKER_JOB_TIMEOUT",
            "'10m' should be a valid number",
            id="job-timeout-not-seconds",
        ),
        pytest.param(
            {"MAX_UPLOAD_BYTES": "0"},
            "MAX_UPLOAD_BYTES",
            "'0' should be greater than 0",
            id="upload-limit-0",
        ),
        pytest.param(
            {"SUPABASE_URL_DEV": "ftp://files.example.com"},
            "SUPABASE_URL_DEV",
            "'ftp://files.example.com' is not an http(s) URL — set SUPABASE_URL_DEV",
            id="supabase-url-not-http",
        ),
    ],
)
def test_malformed_variable_is_named_with_a_fix(
    env: dict[str, str], variable: str, expected: str
) -> None:
    error = config_error({"DATABASE_URL": LOCAL_DSN} | env)

    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"{variable}: ")
    assert expected in error.problems[0]
    assert f" — set {variable}" in error.problems[0]


def test_no_database_url_at_all() -> None:
    error = config_error({})

    [problem] = error.problems
    assert problem.startswith("DATABASE_URL: no database configured")
    assert "set DATABASE_URL=postgresql://" in problem
    assert "SUPABASE_DB_URL_DEV" in problem


def test_no_database_url_names_the_prod_variable_in_prod_mode() -> None:
    [problem] = config_error({"SUPABASE_MODE": "prod", "SUPABASE_DB_URL_DEV": LOCAL_DSN}).problems
    assert "SUPABASE_DB_URL_PROD" in problem
    assert "SUPABASE_MODE=prod" in problem


@pytest.mark.parametrize("missing", ["SUPABASE_URL_PROD", "SUPABASE_SERVICE_ROLE_KEY_PROD"])
def test_prod_mode_needs_all_three_supabase_variables(missing: str) -> None:
    env = supabase_env("prod") | {"SUPABASE_MODE": "prod"}
    del env[missing]

    [problem] = config_error(env).problems

    assert problem.startswith(f"{missing}: not set")
    assert "SUPABASE_MODE=prod" in problem
    assert "SUPABASE_DB_URL_PROD" in problem
    assert f"set {missing}" in problem


@pytest.mark.parametrize(
    "variable", ["DATABASE_URL", "SUPABASE_DB_URL_DEV", "SUPABASE_DB_URL_PROD"]
)
@pytest.mark.parametrize(
    "dsn",
    [
        f"mysql://dragonfly:{ESCAPED_PASSWORD}@db/app",
        f"https://dragonfly:{PASSWORD}@db.example.com",
        f"just-a-password {PASSWORD}",
    ],
)
def test_malformed_dsn_is_reported_without_its_value(variable: str, dsn: str) -> None:
    env = {"DATABASE_URL": LOCAL_DSN} | supabase_env("dev") | supabase_env("prod")
    env[variable] = dsn

    [problem] = config_error(env).problems

    assert problem.startswith(f"{variable}: the value (hidden) is not a postgresql:// URL")
    assert f"set {variable}=postgresql://" in problem
    assert_no_secret(problem)


def test_reports_every_problem_at_once() -> None:
    env = {"ENVIRONMENT": "qa", "LOG_LEVEL": "loud", "PORT": "abc", "WORKER_POLL_INTERVAL": "0"}

    error = config_error(env)

    named = [problem.split(":", 1)[0] for problem in error.problems]
    assert sorted(named) == [
        "DATABASE_URL",
        "ENVIRONMENT",
        "LOG_LEVEL",
        "PORT",
        "WORKER_POLL_INTERVAL",
    ]
    assert str(error) == "\n".join(error.problems)


def test_exit_prints_the_problems_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings_or_exit({"DATABASE_URL": LOCAL_DSN, "PORT": "abc"})

    assert caught.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Configuration error:\n")
    assert "PORT: 'abc'" in err


def test_exit_returns_settings_when_valid() -> None:
    assert load_settings_or_exit({"DATABASE_URL": LOCAL_DSN}).port == 8888


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        pytest.param(
            f"postgresql://dragonfly:{ESCAPED_PASSWORD}@db.example.com:5432/app",
            "user=dragonfly password=*** dbname=app host=db.example.com port=5432",
            id="url-escaped",
        ),
        pytest.param(  # libpq would read "P" as the password and "ss@db..." as the host
            f"postgresql://dragonfly:{PASSWORD}@db.example.com/app",
            UNREADABLE_DSN,
            id="unescaped-at-sign",
        ),
        pytest.param(
            "postgres://u:p:a/s@s#w?rd@h1:5432,h2:5433/app?sslmode=require",
            UNREADABLE_DSN,
            id="colon-slash-hash-question",
        ),
        pytest.param("postgresql://u:@h/app", "user=u dbname=app host=h", id="empty-password"),
        pytest.param(
            "postgresql://h/app?user=u&password=pw%26x&sslmode=require",
            "user=u password=*** dbname=app host=h sslmode=require",
            id="query-parameter",
        ),
        pytest.param(
            f"host=db user=app password={PASSWORD} dbname=app",
            "user=app password=*** dbname=app host=db",
            id="key-value",
        ),
        pytest.param(
            r"host=db password = 'it\'s a s3cr3t' sslpassword=k3y dbname=app",
            "password=*** dbname=app host=db sslpassword=***",
            id="key-value-quoted",
        ),
        pytest.param("postgresql://app@h/app", "user=app dbname=app host=h", id="no-password"),
        pytest.param("postgresql://h:5432/app", "dbname=app host=h port=5432", id="port"),
        pytest.param("host=db dbname=app", "dbname=app host=db", id="key-value-no-password"),
        pytest.param("mysql://u:pw@h/app", UNREADABLE_DSN, id="not-postgres"),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


def test_database_url_masked() -> None:
    settings = load_settings(supabase_env("dev"))
    assert settings.database_url == SECRET_DSN
    assert (
        settings.database_url_masked
        == "user=dragonfly password=*** dbname=dragonfly host=db.example.com port=5432"
    )


INVALID_WITH_SECRETS = [
    pytest.param(
        supabase_env("prod")
        | {"SUPABASE_MODE": "prod", "PORT": "abc", "DRAGONFLY_API_KEY": API_KEY},
        id="valid-secrets-other-error",
    ),
    pytest.param(
        {"DATABASE_URL": f"mysql://dragonfly:{PASSWORD}@db/app", "DRAGONFLY_API_KEY": API_KEY},
        id="malformed-url-dsn",
    ),
    pytest.param(
        {"SUPABASE_DB_URL_DEV": f"password={PASSWORD} {ESCAPED_PASSWORD} '"},
        id="malformed-key-value-dsn",
    ),
    pytest.param(
        {
            "SUPABASE_MODE": "prod",
            "SUPABASE_DB_URL_PROD": SECRET_DSN,
            "SUPABASE_SERVICE_ROLE_KEY_PROD": SERVICE_KEY,
        },
        id="missing-supabase-url",
    ),
    pytest.param(
        {
            "SUPABASE_MODE": "nope",
            "SUPABASE_SERVICE_ROLE_KEY_DEV": SERVICE_KEY,
            "SUPABASE_DB_URL_DEV": f"http://{SERVICE_KEY}:{PASSWORD}@x",
        },
        id="bad-mode",
    ),
]


@pytest.mark.parametrize("env", INVALID_WITH_SECRETS)
def test_secrets_never_appear_in_errors(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    error = config_error(env)
    assert_no_secret(str(error))
    assert_no_secret("".join(traceback.format_exception(error)))

    with pytest.raises(SystemExit):
        load_settings_or_exit(env)
    out, err = capsys.readouterr()
    assert "Configuration error:" in err
    assert_no_secret(out + err)


def test_secrets_never_appear_in_settings_output() -> None:
    env = supabase_env("prod") | {"SUPABASE_MODE": "prod", "DRAGONFLY_API_KEY": API_KEY}
    env["SUPABASE_SERVICE_ROLE_KEY_PROD"] = SERVICE_KEY
    settings = load_settings(env)

    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        repr(settings.supabase_service_role_key),
        settings.database_url_masked,
    ):
        assert_no_secret(text)
    assert ESCAPED_PASSWORD in settings.database_url  # the real value is still there to connect


def test_direct_construction_validates_without_echoing_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=f"mysql://dragonfly:{PASSWORD}@db/app", dragonfly_api_key=API_KEY)
    assert_no_secret(str(caught.value))

    with pytest.raises(ValidationError, match="no database configured"):
        Settings()


def test_bad_environment_exits_2_in_a_real_process() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "SUPABASE_MODE": "prod",
        "SUPABASE_DB_URL_PROD": SECRET_DSN,
        "SUPABASE_SERVICE_ROLE_KEY_PROD": SERVICE_KEY,
        "DRAGONFLY_API_KEY": API_KEY,
        "DATABASE_URL": f"mysql://dragonfly:{PASSWORD}@db/app",
        "PORT": "abc",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reference.config import load_settings_or_exit; load_settings_or_exit()",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Configuration error:")
    assert "DATABASE_URL: the value (hidden)" in result.stderr
    assert "PORT: 'abc'" in result.stderr
    assert_no_secret(result.stdout + result.stderr)
