"""The reference API (FastAPI): intake, enforcement jobs, queue and worker status."""

from reference.api.app import create_app
from reference.api.uploads import store_upload

__all__ = ["create_app", "store_upload"]
