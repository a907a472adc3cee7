"""DATABASE_PREPARED_STATEMENTS: detected for Supabase's transaction pooler, configurable."""

from __future__ import annotations

import pytest

from reference.config import ConfigError, load_settings
from reference.pooling import (
    PreparedStatements,
    PreparedStatementsError,
    behind_transaction_pooler,
    connect_kwargs,
)

OFF = {"prepare_threshold": None}


@pytest.mark.parametrize(
    ("url", "pooled"),
    [
        ("postgresql://u:p@aws-0-us-east-1.pooler.supabase.com:6543/postgres", True),
        ("postgresql://u:p@aws-0-us-east-1.pooler.supabase.com:5432/postgres", True),
        ("postgresql://u:p@db.abcdefgh.supabase.co:6543/postgres", True),
        ("host=db.example.com port=6543 dbname=app user=u", True),
        ("postgresql://u:p@db.abcdefgh.supabase.co:5432/postgres", False),
        ("postgresql://u:p@127.0.0.1:6432/postgres", False),  # a PgBouncer a URL cannot reveal
        ("postgresql://u:p@127.0.0.1/postgres", False),
        ("not a url at all", False),
    ],
)
def test_auto_detects_supabases_transaction_pooler(url: str, pooled: bool) -> None:
    assert behind_transaction_pooler(url) is pooled
    assert connect_kwargs(url, PreparedStatements.AUTO) == (OFF if pooled else {})


def test_configured_values_win_over_the_url() -> None:
    supabase = "postgresql://u:p@x.pooler.supabase.com:6543/postgres"
    own_pgbouncer = "postgresql://u:p@127.0.0.1:6432/postgres"
    assert connect_kwargs(own_pgbouncer, PreparedStatements.OFF) == OFF
    assert connect_kwargs(supabase, PreparedStatements.ON) == {}


def test_tools_read_the_variable_from_their_environment() -> None:
    url = "postgresql://u:p@127.0.0.1:6432/postgres"
    assert connect_kwargs(url, environ={}) == {}
    assert connect_kwargs(url, environ={"DATABASE_PREPARED_STATEMENTS": " Off "}) == OFF
    with pytest.raises(PreparedStatementsError, match="DATABASE_PREPARED_STATEMENTS: 'sometimes'"):
        connect_kwargs(url, environ={"DATABASE_PREPARED_STATEMENTS": "sometimes"})


def test_the_services_parse_it_with_their_settings() -> None:
    base = {"DATABASE_URL": "postgresql://u:secret@x.pooler.supabase.com:6543/postgres"}
    assert load_settings(base).database_connect_kwargs == OFF
    on = load_settings({**base, "DATABASE_PREPARED_STATEMENTS": "ON"})
    assert on.database_connect_kwargs == {}
    with pytest.raises(ConfigError) as raised:
        load_settings({**base, "DATABASE_PREPARED_STATEMENTS": "yes"})
    assert str(raised.value).startswith("DATABASE_PREPARED_STATEMENTS: 'yes' is not one of auto")
    assert "secret" not in str(raised.value)
