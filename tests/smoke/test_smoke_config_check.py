"""The config check on its own: each mistake an operator makes with the variables, named."""

from __future__ import annotations

import pytest
from standins import service_role_key

from harness.targets import Mode
from reference.masking import masker
from smoke.config_check import check_config
from smoke.context import SmokeContext
from smoke.runner import CheckFailedError

PROD_URL = "https://prodref.supabase.co"
DEV_URL = "https://devref.supabase.co"
PROD_DB = "postgresql://postgres:Pr0d-pw@db.prodref.supabase.co:5432/postgres"
DEV_DB = "postgresql://postgres:D3v-pw@db.devref.supabase.co:5432/postgres"


def context(mode: Mode = Mode.PROD, **values: str | None) -> SmokeContext:
    settings: dict[str, str | None] = {
        "api_url": "https://api.example.com",
        "db_url": PROD_DB,
        "supabase_url": PROD_URL,
        "supabase_key": service_role_key("prodref"),
        **values,
    }
    env = {"SUPABASE_URL_DEV": DEV_URL, "SUPABASE_DB_URL_DEV": DEV_DB}
    return SmokeContext(
        mode=mode,
        is_local=False,
        env=env,
        dashboard_url=None,
        api_key=None,
        mask=masker([]),
        **settings,  # type: ignore[arg-type]
    )


def test_a_consistent_prod_configuration_passes() -> None:
    assert "mode prod" in check_config(context())


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"supabase_url": DEV_URL, "supabase_key": service_role_key("devref")},
         f"Supabase URL {DEV_URL} is SUPABASE_URL_DEV's project"),
        ({"db_url": DEV_DB},
         "database db.devref.supabase.co:5432/postgres is SUPABASE_DB_URL_DEV's"),
        ({"supabase_key": service_role_key("prodref", role="anon")},
         "is a key with role 'anon', not 'service_role'"),
        ({"supabase_key": service_role_key("otherref")},
         "belongs to project 'otherref', but the URL is project 'prodref'"),
        ({"supabase_key": "not-a-key"}, "is neither a JWT nor an sb_secret_ key"),
        ({"db_url": "mysql://u:p@h/db"}, "is not a postgresql:// URL"),
        ({"db_url": "postgresql://postgres:x@db.otherref.supabase.co/postgres"},
         "the database URL is project 'otherref' but the Supabase URL is project 'prodref'"),
        ({"api_url": None}, "DRAGONFLY_TARGET_API_URL (or --api-url) is not set"),
    ],
)  # fmt: skip
def test_each_mistake_is_named(values: dict[str, str | None], problem: str) -> None:
    with pytest.raises(CheckFailedError) as failure:
        check_config(context(**values))

    assert problem in str(failure.value)
    assert "Pr0d-pw" not in str(failure.value)
    assert "D3v-pw" not in str(failure.value)


def test_a_dev_target_must_not_point_at_prod() -> None:
    dev = context(Mode.DEV, supabase_url=PROD_URL)
    dev.env = {"SUPABASE_URL_PROD": PROD_URL}

    with pytest.raises(CheckFailedError, match="is SUPABASE_URL_PROD's project"):
        check_config(dev)


def test_the_new_secret_key_format_is_accepted() -> None:
    assert check_config(context(supabase_key="sb_secret_abcdefghijklmnop"))
