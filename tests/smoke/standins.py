"""Real HTTP servers on 127.0.0.1 standing in for what the local stack does not have.

- the Supabase REST endpoint, which accepts only its own service-role key;
- the Vercel-hosted dashboard, serving the built-bundle fixture with values baked in;
- a host that answers every request the same way (a proxy's page, a 500 from a broken deploy).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "dashboard" / "dist"
Response = tuple[int, str, bytes]  # status, content type, body
Responder = Callable[[str, Mapping[str, str]], Response]


class LoopbackServer:
    """Answers GET requests with `respond(path, headers)` on 127.0.0.1:<free port> until closed."""

    def __init__(self, respond: Responder) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = respond(self.path, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815 - the same answer (the responder sees the path)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def service_role_key(ref: str, role: str = "service_role", signer: str = "sig") -> str:
    """A JWT shaped like Supabase's keys (header.claims.signature, base64url)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    signature = base64.urlsafe_b64encode(f"{signer}-{ref}-{role}".encode()).decode().rstrip("=")
    return ".".join(
        [part({"alg": "HS256", "typ": "JWT"}), part({"iss": "supabase", "ref": ref, "role": role}),
         signature]
    )  # fmt: skip


def supabase_rest(accepted_key: str) -> Responder:
    """PostgREST behind Supabase's gateway: its OpenAPI description for the right key only."""

    def respond(path: str, headers: Mapping[str, str]) -> Response:
        if not path.startswith("/rest/v1/"):
            return 404, "application/json", b'{"message":"no Route matched with those values"}'
        if headers.get("apikey") != accepted_key:
            body = {"message": "Invalid API key", "hint": "Double check your Supabase API key."}
            return 401, "application/json", json.dumps(body).encode()
        body = {"swagger": "2.0", "info": {"title": "PostgREST API"}, "paths": {"/": {}}}
        return 200, "application/openapi+json", json.dumps(body).encode()

    return respond


def built_dashboard(values: Mapping[str, str]) -> Responder:
    """The fixture's build with these VITE_* values baked in, served as Vercel would."""
    files: dict[str, tuple[str, bytes]] = {}
    for path in FIXTURE.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for name, value in values.items():
                text = text.replace(f"__{name}__", value)
            kind = {".js": "text/javascript", ".css": "text/css"}.get(path.suffix, "text/html")
            files["/" + path.relative_to(FIXTURE).as_posix()] = (kind, text.encode())
    files["/"] = files["/index.html"]

    def respond(path: str, headers: Mapping[str, str]) -> Response:
        kind, body = files.get(path, files["/index.html"])  # a single-page app's fallback
        return 200, f"{kind}; charset=utf-8", body

    return respond


def same_answer(status: int, content_type: str, body: str) -> Responder:
    """Every path gets the same answer: a proxy's page, or a deployment that only errors."""
    return lambda path, headers: (status, content_type, body.encode())
