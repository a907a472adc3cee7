"""The access check (after Supabase's database advisors): no one gets in where they don't belong.

Through the database (read-only, each query in its own `BEGIN READ ONLY` transaction): a table
without forced row-level security, a function of ops or enforcement executable by PUBLIC, anon
or authenticated, a SECURITY DEFINER function without a pinned search_path, a view that bypasses
row-level security, a policy for anon. Through Supabase's REST API with the anon key (from
VITE_SUPABASE_ANON_KEY, or as the dashboard bundle ships it): the key can neither read
`judgments` nor call the queue's RPCs. The RPC probes send arguments the functions refuse (an
unknown job type) and ask PostgREST to roll back, so even an open project changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx

from harness.schema.access_catalog import FIX_MIGRATION, access_problems
from smoke.context import SmokeContext, first_line
from smoke.dashboard import BAKED_VALUE, _bundle
from smoke.http_checks import HTTP_TIMEOUT, get
from smoke.runner import CheckFailedError, CheckSkippedError

ANON_KEY_ENV = "VITE_SUPABASE_ANON_KEY"
# RPC -> arguments it refuses before touching a row (DFQ01: unknown job type)
QUEUE_RPCS = {
    "queue_job": {"job_type": "dragonfly_smoke_access_probe"},
    "claim_pending_job": {
        "job_types": ["dragonfly_smoke_access_probe"],
        "worker_id": "dragonfly-smoke-access-probe",
        "batch_size": 1,
    },
}
# PostgREST's "you may not" and "not exposed" answers: permission denied (42501), no such
# function or table in the exposed schemas (PGRST2xx), schema not exposed (PGRST106).
REFUSED = (401, 403, 404, 406)


def _anon_key(ctx: SmokeContext) -> str | None:
    key = ctx.env.get(ANON_KEY_ENV, "").strip()
    if key or ctx.dashboard_url is None:
        return key or None
    page, _ = get(ctx, ctx.dashboard_url + "/")
    if page.status_code != 200:
        return None  # the dashboard check reports it
    _, text = _bundle(ctx, ctx.dashboard_url + "/", page.text)
    baked = [value for name, value in BAKED_VALUE.findall(text) if name == ANON_KEY_ENV]
    return baked[0] if baked else None


def _code(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _rest_problems(ctx: SmokeContext, anon_key: str) -> list[str]:
    base = f"{(ctx.supabase_url or '').rstrip('/')}/rest/v1"
    headers = {"apikey": anon_key, "Authorization": f"Bearer {anon_key}"}
    problems = []
    try:
        with ctx.http(HTTP_TIMEOUT) as client:
            read = client.get(f"{base}/judgments", params={"select": "id", "limit": "1"},
                              headers=headers)  # fmt: skip
            rows = read.json() if read.status_code == 200 else []
            if read.status_code == 200 and rows:
                problems.append(
                    "the anon key reads public.judgments through the REST API (GET "
                    "/rest/v1/judgments answered rows; fix: REVOKE ALL ON public.judgments FROM "
                    f"anon, authenticated and force row-level security — {FIX_MIGRATION})"
                )
            elif read.status_code != 200 and read.status_code not in REFUSED:
                problems.append(f"GET /rest/v1/judgments with the anon key: {read.status_code}")
            for rpc, arguments in QUEUE_RPCS.items():
                answer = client.post(
                    f"{base}/rpc/{rpc}",
                    json=arguments,
                    headers={**headers, "Content-Profile": "ops", "Prefer": "tx=rollback"},
                )
                code = _code(answer)
                if answer.status_code in REFUSED or code == "42501" or code.startswith("PGRST"):
                    continue
                problems.append(
                    f"the anon key can call ops.{rpc} through the REST API (POST /rest/v1/rpc/"
                    f"{rpc} answered {answer.status_code} {code}: the function ran; fix: REVOKE "
                    f"EXECUTE ON FUNCTION ops.{rpc} FROM PUBLIC, anon, authenticated — "
                    f"{FIX_MIGRATION})"
                )
    except httpx.HTTPError as error:
        raise CheckFailedError(f"the REST probe with the anon key: {first_line(error)}") from None
    return problems


def check_access(ctx: SmokeContext) -> str:
    done, problems = [], []
    if ctx.db_url is not None:
        with ctx.connect() as database:
            problems += access_problems(database.conn)  # each query its own BEGIN READ ONLY
        done.append("catalog: RLS forced, nothing for anon/authenticated/PUBLIC")
    anon_key = _anon_key(ctx) if ctx.supabase_url else None
    if anon_key is not None:
        problems += _rest_problems(ctx, anon_key)
        done.append("REST: the anon key reads no judgment and calls no queue RPC")
    if problems:
        raise CheckFailedError("; ".join(problems))
    if not done:
        raise CheckSkippedError(
            "no database URL and no Supabase URL with an anon key "
            f"({ANON_KEY_ENV} or a dashboard bundle): nothing to check"
        )
    return "; ".join(done)
