"""`python -m reference.api`: the API on $HOST:$PORT (default 0.0.0.0:8888, as Railway needs)."""

from __future__ import annotations

import signal
from types import FrameType

from reference.api import create_app
from reference.api.health import SERVICE_NAME
from reference.api.server import serve
from reference.config import load_settings_or_exit
from reference.telemetry import configure_telemetry


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """Exit 0: uvicorn re-raises the signal it shut down on, after a graceful shutdown."""
    raise SystemExit(0)


def main() -> None:
    settings = load_settings_or_exit()
    telemetry = configure_telemetry(SERVICE_NAME, settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    try:
        serve(create_app(settings), settings)
    finally:
        telemetry.shutdown()  # flush spans, metrics and logs before exit


if __name__ == "__main__":
    main()
