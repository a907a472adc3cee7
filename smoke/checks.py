"""The suite: every check in the order it runs, with its timeout."""

from __future__ import annotations

from smoke.access_check import check_access
from smoke.canary import check_canary
from smoke.canary_cleanup import teardown_canary
from smoke.config_check import check_config
from smoke.context import SmokeContext
from smoke.dashboard import check_dashboard
from smoke.db_checks import check_db_connect, check_queue_health, check_schema, check_workers
from smoke.http_checks import check_api_health, check_api_ready, check_api_root, check_supabase_rest
from smoke.runner import Check

CONFIG_TIMEOUT = 5.0  # seconds: the config check only reads variables


def all_checks(check_timeout: float, canary_timeout: float) -> list[Check[SmokeContext]]:
    """Every check; the canary may wait for the job and then the CSV, each `canary_timeout`."""
    return [
        Check("config", CONFIG_TIMEOUT, check_config),
        Check("api_root", check_timeout, check_api_root),
        Check("api_health", check_timeout, check_api_health),
        Check("api_ready", check_timeout, check_api_ready),
        Check("db_connect", check_timeout, check_db_connect),
        Check("schema", check_timeout, check_schema),
        Check("queue_health", check_timeout, check_queue_health),
        Check("workers", check_timeout, check_workers),
        Check("supabase_rest", check_timeout, check_supabase_rest),
        Check("dashboard", check_timeout, check_dashboard),
        Check("access", check_timeout, check_access),
        Check("canary", 2 * canary_timeout + check_timeout, check_canary, teardown_canary),
    ]
