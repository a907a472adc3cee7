"""Pass on what the harness's OTLP receiver gets to the user's OTLP/HTTP receiver, if any.

The services the tests start must export to `otel_collector` (the tests read their spans
there), so the user's OTEL_EXPORTER_OTLP_ENDPOINT cannot reach them directly; the receiver
forwards each export, byte for byte, to the endpoint the standard variables name instead:
OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT
(+ /v1/<signal>), with OTEL_EXPORTER_OTLP_HEADERS and the per-signal headers. OTLP/HTTP only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import httpx
from opentelemetry.util.re import parse_env_headers

SIGNALS = {"/v1/traces": "TRACES", "/v1/metrics": "METRICS", "/v1/logs": "LOGS"}
FORWARD_TIMEOUT = 10.0  # seconds for the user's receiver to take one export


def forward_targets(environ: Mapping[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    """OTLP path -> (URL, headers) of the user's receiver, from the standard variables."""
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    common = parse_env_headers(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True)
    targets = {}
    for path, signal in SIGNALS.items():
        url = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
        url = url or (f"{base.rstrip('/')}{path}" if base else "")
        own = environ.get(f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "")
        if url:
            targets[path] = (url, {**common, **parse_env_headers(own, liberal=True)})
    return targets


class OtlpForwarder:
    """Sends exports on in the background, one at a time; failures are counted, never raised
    (the headers may hold an API key: nothing about them is printed)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.targets = forward_targets(os.environ if environ is None else environ)
        self.pool = ThreadPoolExecutor(1, "otlp-forward") if self.targets else None
        self.client = httpx.Client(timeout=FORWARD_TIMEOUT)
        self.forwarded = 0
        self.failures = 0

    def forward(self, path: str, body: bytes, content_encoding: str | None) -> None:
        if self.pool is None or path not in self.targets:
            return
        url, headers = self.targets[path]
        headers = {**headers, "Content-Type": "application/x-protobuf"}
        if content_encoding:
            headers["Content-Encoding"] = content_encoding
        self.pool.submit(self._send, url, body, headers)

    def _send(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.client.post(url, content=body, headers=headers).raise_for_status()
        except httpx.HTTPError:
            self.failures += 1
        else:
            self.forwarded += 1

    def close(self) -> None:
        """Waits for what is queued (each send bounded by FORWARD_TIMEOUT)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.client.close()
