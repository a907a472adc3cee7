"""The dashboard check: the deployed page answers and its bundle targets this mode's services.

Vite bakes VITE_API_BASE_URL and VITE_SUPABASE_URL into the JavaScript at build time, so a prod
dashboard built with dev's values still answers 200: only its bundle shows the mistake.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from smoke.context import SmokeContext
from smoke.http_checks import describe_body, get
from smoke.runner import CheckFailedError, CheckSkippedError

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=[\"']([^\"']+\.m?js)[\"']", re.IGNORECASE)
# The env object Vite emits where the code reads import.meta.env as a whole.
BAKED_VALUE = re.compile(r"\b(VITE_[A-Z0-9_]+)\s*:\s*\"([^\"]*)\"")
URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::\d+)?(?:/[A-Za-z0-9._~\-/]*)?")
MAX_SCRIPTS = 8  # the entry chunk and a few preloads
MAX_BUNDLE_BYTES = 20 * 1024 * 1024
FIX = (
    "rebuild the dashboard with this mode's values (Vercel: Settings > Environment Variables, "
    "VITE_API_BASE_URL and VITE_SUPABASE_URL, then redeploy)"
)


def _same_origin(url: str, page: str) -> bool:
    return urlsplit(url).netloc == urlsplit(page).netloc


def _bundle(ctx: SmokeContext, page_url: str, html: str) -> tuple[list[str], str]:
    """The page's same-origin scripts and their text joined (other origins are never fetched)."""
    scripts = [urljoin(page_url, src) for src in SCRIPT_SRC.findall(html)]
    scripts = [src for src in scripts if _same_origin(src, page_url)][:MAX_SCRIPTS]
    if not scripts:
        raise CheckFailedError(
            f"{page_url} answered 200 but loads no JavaScript bundle of its own: "
            "not the built dashboard (check the URL and the Vercel deployment)"
        )
    texts = []
    for script in scripts:
        response, _ = get(ctx, script)
        if response.status_code != 200:
            raise CheckFailedError(f"the bundle {script} answered {response.status_code}")
        texts.append(response.text[:MAX_BUNDLE_BYTES])
    return scripts, "\n".join(texts)


def _targets(text: str, name: str) -> set[str]:
    """Values baked for `name` (VITE_API_BASE_URL...), else every URL in the bundle."""
    baked = {value.rstrip("/") for key, value in BAKED_VALUE.findall(text) if key == name}
    return baked or {url.rstrip("/") for url in URL.findall(text)}


def check_dashboard(ctx: SmokeContext) -> str:
    if ctx.dashboard_url is None:
        where = "the local stack has none" if ctx.is_local else "none given"
        raise CheckSkippedError(
            f"no dashboard URL ({where}): set DRAGONFLY_TARGET_DASHBOARD_URL or --dashboard-url"
        )
    page, _ = get(ctx, ctx.dashboard_url + "/")
    if page.status_code != 200 or "html" not in page.headers.get("content-type", ""):
        raise CheckFailedError(
            f"GET {ctx.dashboard_url}/ answered {page.status_code}: {describe_body(page)}"
        )
    scripts, text = _bundle(ctx, ctx.dashboard_url + "/", page.text)
    problems = []
    if ctx.supabase_key and ctx.supabase_key in text:
        problems.append(
            "the bundle contains the service-role key: rotate it now and build with "
            "VITE_SUPABASE_ANON_KEY only"
        )
    other = "dev" if ctx.mode.value == "prod" else "prod"
    other_url = ctx.env.get(f"SUPABASE_URL_{other.upper()}", "").strip().rstrip("/")
    expected = {
        "VITE_API_BASE_URL": ctx.api_url,
        "VITE_SUPABASE_URL": ctx.supabase_url,
    }
    for name, want in expected.items():
        found = _targets(text, name)
        if other_url and other_url in found and name == "VITE_SUPABASE_URL":
            problems.append(
                f"built for {other}: {name} is {other_url} (SUPABASE_URL_{other.upper()}), "
                f"expected {want}"
            )
        elif want and want.rstrip("/") not in found:
            shown = ", ".join(sorted(found)[:3]) or "no URL"
            problems.append(f"{name} is not {want} (the bundle has {shown})")
    if problems:
        raise CheckFailedError(f"{ctx.mode.value} dashboard: " + "; ".join(problems) + f" — {FIX}")
    names = ", ".join(urlsplit(s).path for s in scripts)
    return f"200; {names} targets this mode's API and Supabase project"
