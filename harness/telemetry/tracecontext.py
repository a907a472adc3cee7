"""httpx request hooks that send the current trace context (`traceparent`) with each request.

Under pytest the current span is the test's (harness/plugin/traces.py), so the services' request
spans, and the jobs those requests queue, join the test's trace.
"""

from __future__ import annotations

import httpx
from opentelemetry import propagate


def send_trace_context(request: httpx.Request) -> None:
    """For httpx.Client(event_hooks={"request": [...]})."""
    propagate.inject(request.headers)


async def send_trace_context_async(request: httpx.Request) -> None:
    """For httpx.AsyncClient(event_hooks={"request": [...]})."""
    propagate.inject(request.headers)
