"""The OpenAPI document is committed (tests/contract/openapi.json): a change to it is reviewed.

After a deliberate API change, regenerate the file and commit it with the change:

    DRAGONFLY_UPDATE_OPENAPI=1 .venv/bin/pytest tests/contract/test_openapi_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from reference.api import create_app
from reference.config import load_settings

UPDATE_ENV = "DRAGONFLY_UPDATE_OPENAPI"
OPENAPI_SNAPSHOT = Path(__file__).with_name("openapi.json")


def rendered(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def openapi_diff(committed: str, current: str) -> str:
    """A unified diff of the committed and the current document, or "" when they agree."""
    return "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            "committed openapi.json",
            "the app's OpenAPI",
            n=2,
        )
    )


def test_the_apps_openapi_is_the_committed_one() -> None:
    app = create_app(load_settings({"DATABASE_URL": "postgresql://u@127.0.0.1:1/unused"}))
    current = rendered(app.openapi())
    if os.environ.get(UPDATE_ENV) == "1":
        OPENAPI_SNAPSHOT.write_text(current)
    diff = openapi_diff(OPENAPI_SNAPSHOT.read_text(), current)

    assert not diff, (
        f"the API's OpenAPI document changed; review the diff below, then accept it with "
        f"{UPDATE_ENV}=1 pytest {__file__} and commit openapi.json:\n{diff}"
    )


def test_the_diff_shows_a_changed_status() -> None:
    spec = json.loads(OPENAPI_SNAPSHOT.read_text())
    changed = json.loads(OPENAPI_SNAPSHOT.read_text())
    del changed["paths"]["/readyz"]["get"]["responses"]["503"]

    diff = openapi_diff(rendered(spec), rendered(changed))

    removed = [line for line in diff.splitlines() if line.startswith("-")]
    assert any('"503": {' in line for line in removed), diff
    assert any("retry after a few seconds" in line for line in removed), diff
    assert openapi_diff(rendered(spec), rendered(spec)) == ""
