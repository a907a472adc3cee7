"""The reference API (FastAPI): intake, enforcement jobs, queue and worker status."""

from reference.api.app import create_app

__all__ = ["create_app"]
