"""harness.targets: one way to name a deployment, options over variables, secrets masked."""

from __future__ import annotations

import argparse

import pytest

from harness.targets import (
    Mode,
    TargetError,
    WritesNotAllowedError,
    add_target_arguments,
    resolve_target,
)

DB_URL = "postgresql://postgres:S3cret-pw@db.prodref.supabase.co:5432/postgres"
PROD_ENV = {
    "SUPABASE_MODE": "prod",
    "SUPABASE_URL_PROD": "https://prodref.supabase.co/",
    "SUPABASE_SERVICE_ROLE_KEY_PROD": "service-role-key-prod",
    "SUPABASE_DB_URL_PROD": DB_URL,
    "SUPABASE_URL_DEV": "https://devref.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY_DEV": "service-role-key-dev",
    "DRAGONFLY_TARGET_API_URL": "https://api.example.com/",
    "DRAGONFLY_API_KEY": "api-key-value",
}


def parse(*argv: str) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return vars(parser.parse_args(argv))


def test_nothing_named_is_the_local_stack_which_may_be_written() -> None:
    target = resolve_target(parse(), {})

    assert target.is_local
    assert target.may_write
    assert target.mode is Mode.DEV
    assert target.describe() == "the local reference stack (embedded Postgres)"
    assert target.write_warning() is None


def test_the_modes_variables_describe_the_target() -> None:
    target = resolve_target(parse(), PROD_ENV)

    assert target.mode is Mode.PROD
    assert not target.is_local
    assert target.supabase_url == "https://prodref.supabase.co"  # trailing slash dropped
    assert target.supabase_key_value() == "service-role-key-prod"
    assert target.db_url_value() == DB_URL
    assert target.api_url == "https://api.example.com"
    assert target.sources["supabase-url"] == "SUPABASE_URL_PROD"


def test_options_win_over_variables_and_mode_picks_the_other_set() -> None:
    target = resolve_target(parse("--mode", "DEV", "--api-url", "http://127.0.0.1:8888"), PROD_ENV)

    assert target.mode is Mode.DEV
    assert target.supabase_url == "https://devref.supabase.co"
    assert target.supabase_key_value() == "service-role-key-dev"
    assert target.db_url is None  # SUPABASE_DB_URL_DEV is not set
    assert target.api_url == "http://127.0.0.1:8888"
    assert target.sources["api-url"] == "--api-url"


def test_target_db_url_variable_wins_over_the_supabase_one() -> None:
    env = {**PROD_ENV, "DRAGONFLY_TARGET_DB_URL": "postgresql://u:other@127.0.0.1/db"}

    assert resolve_target(parse(), env).db_url_value() == "postgresql://u:other@127.0.0.1/db"


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ((), {"SUPABASE_MODE": "staging"}, "'staging' is not dev or prod"),
        (("--api-url", "api.example.com"), {}, "--api-url: 'api.example.com' is not an http(s)"),
        (("--dashboard-url", "ftp://x"), {}, "--dashboard-url: 'ftp://x' is not an http(s)"),
    ],
)
def test_unusable_options_say_what_to_fix(
    options: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_target(parse(*options), env)


def test_secrets_include_the_database_password_and_are_masked() -> None:
    target = resolve_target(parse(), PROD_ENV)
    text = f"connect {DB_URL} with key service-role-key-prod and api-key-value; pw S3cret-pw"

    assert set(target.secrets()) == {
        DB_URL,
        "S3cret-pw",
        "service-role-key-prod",
        "api-key-value",
    }
    masked = target.mask(text)
    assert all(secret not in masked for secret in target.secrets())
    assert masked == "connect *** with key *** and ***; pw ***"
    assert target.mask("host db.prodref.supabase.co") == "host db.prodref.supabase.co"
    assert "S3cret-pw" not in target.describe()
    assert "service-role" not in target.describe()
    assert "S3cret-pw" not in repr(target)


def test_a_named_target_is_read_only_until_allowed_and_prod_warns() -> None:
    read_only = resolve_target(parse(), PROD_ENV)
    with pytest.raises(WritesNotAllowedError, match="pass --allow-writes"):
        read_only.require_writes("the canary")
    assert read_only.write_warning() is None

    allowed = resolve_target(parse("--allow-writes"), PROD_ENV)
    allowed.require_writes("the canary")
    warning = allowed.write_warning()
    assert warning is not None
    assert warning.startswith("WARNING: writing to the PROD target")
    assert "S3cret-pw" not in warning


def test_a_dev_target_writes_without_the_prod_warning() -> None:
    target = resolve_target(parse("--allow-writes", "--api-url", "http://127.0.0.1:1"), {})

    assert target.may_write
    assert target.write_warning() is None
