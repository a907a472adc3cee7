"""The smoke `access` check: the catalog of a real database, and a REST stand-in with an anon key.

The stand-in answers as Supabase's REST API would for a locked-down project (permission denied,
schema not exposed) or for an open one (rows of judgments; the queue RPC ran and refused its
arguments). The check is called in-process; test_smoke_states runs it in the whole suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import pytest
from standins import LoopbackServer, Responder, Response, built_dashboard, service_role_key

from harness.mutants.catalogue import ACCESS_MUTANTS, SqlMutant
from harness.targets import Mode
from smoke.access_check import check_access
from smoke.context import SmokeContext
from smoke.runner import CheckFailedError, CheckSkippedError

ANON_KEY = service_role_key("prodproject", role="anon")
Serve = Callable[[Responder], LoopbackServer]


def supabase_project(anon_key: str, *, open_to_anon: bool) -> Responder:
    """Supabase's REST API for the anon key: locked down, or open as before migration 0015."""

    def answer(status: int, body: object) -> Response:
        return status, "application/json", json.dumps(body).encode()

    def respond(path: str, headers: Mapping[str, str]) -> Response:
        if headers.get("apikey") != anon_key:
            return answer(401, {"message": "Invalid API key"})
        if path.startswith("/rest/v1/judgments"):
            if open_to_anon:
                return answer(200, [{"id": "5b0c5c9e-0000-4000-8000-000000000001"}])
            denied = {"code": "42501", "message": "permission denied for table judgments"}
            return answer(401, denied)
        if path.startswith("/rest/v1/rpc/"):
            if open_to_anon:
                return answer(400, {"code": "DFQ01", "message": "unknown job type"})
            return answer(406, {"code": "PGRST106", "message": "The schema must be one of public"})
        return answer(404, {"code": "PGRST205", "message": "no such table"})

    return respond


def context(
    *, db_url: str | None = None, supabase_url: str | None = None, **env: str
) -> SmokeContext:
    return SmokeContext(
        mode=Mode.PROD, is_local=False, env=env, api_url=None, db_url=db_url,
        supabase_url=supabase_url, supabase_key=None, dashboard_url=env.get("DASHBOARD"),
        api_key=None, mask=lambda text: text,
    )  # fmt: skip


def test_a_freshly_migrated_database_passes(database_url: str) -> None:
    assert "catalog" in check_access(context(db_url=database_url))


@pytest.mark.parametrize("mutant", ACCESS_MUTANTS, ids=lambda m: m.name)
def test_each_access_mutant_fails_naming_the_object_and_the_fix(
    database_url: str, db_conn: psycopg.Connection[Any], mutant: SqlMutant
) -> None:
    mutant.apply(db_conn)
    with pytest.raises(CheckFailedError) as failure:
        check_access(context(db_url=database_url))
    detail = str(failure.value)
    assert "fix:" in detail
    expected = {
        "access-public-execute": "function ops.claim_pending_job(text[],text,integer) is "
        "executable by PUBLIC",
        "access-judgments-rls-off": "table public.judgments: row-level security off",
        "access-anon-read-policy": "policy anon_reads_judgments on public.judgments applies to "
        "anon",
    }[mutant.name]
    assert expected in detail


def test_a_locked_down_project_passes_the_rest_probe(serve: Serve) -> None:
    project = serve(supabase_project(ANON_KEY, open_to_anon=False))
    ctx = context(supabase_url=project.url, VITE_SUPABASE_ANON_KEY=ANON_KEY)
    assert "REST: the anon key reads no judgment" in check_access(ctx)


def test_an_open_project_fails_on_judgments_and_each_queue_rpc(serve: Serve) -> None:
    project = serve(supabase_project(ANON_KEY, open_to_anon=True))
    with pytest.raises(CheckFailedError) as failure:
        check_access(context(supabase_url=project.url, VITE_SUPABASE_ANON_KEY=ANON_KEY))
    detail = str(failure.value)
    assert "the anon key reads public.judgments through the REST API" in detail
    assert "the anon key can call ops.queue_job" in detail
    assert "the anon key can call ops.claim_pending_job" in detail
    assert ANON_KEY not in detail


def test_the_anon_key_is_read_from_the_dashboard_bundle(serve: Serve) -> None:
    project = serve(supabase_project(ANON_KEY, open_to_anon=True))
    dashboard = serve(
        built_dashboard(
            {
                "VITE_API_BASE_URL": "http://127.0.0.1:9",
                "VITE_SUPABASE_URL": project.url,
                "VITE_SUPABASE_ANON_KEY": ANON_KEY,
            }
        )
    )
    with pytest.raises(CheckFailedError, match=r"reads public\.judgments"):
        check_access(context(supabase_url=project.url, DASHBOARD=dashboard.url))


def test_nothing_to_check_is_a_skip() -> None:
    with pytest.raises(CheckSkippedError, match="nothing to check"):
        check_access(context())
