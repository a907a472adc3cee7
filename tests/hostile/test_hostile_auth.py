"""Auth under attack: the key is compared in constant time, health tells nothing secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

import reference.api.deps
from harness.targets import Target
from harness.targets.contract import TargetApi, target_client

SPEC = json.loads((Path(__file__).parents[1] / "contract" / "openapi.json").read_text())
STRATEGY = "/api/v1/enforcement/strategy"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def api(database_url: str) -> Iterator[TargetApi]:
    with target_client(Target(), database_url, SPEC) as served:
        yield served


def test_the_key_is_compared_in_constant_time(
    api: TargetApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = reference.api.deps.secrets.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(reference.api.deps.secrets, "compare_digest", spy)
    assert api.api_key is not None
    wrong = api.client.post(
        STRATEGY, json={"judgment_id": MISSING}, headers={"X-DRAGONFLY-API-KEY": "x" * 24}
    )
    right = api.client.post(STRATEGY, json={"judgment_id": MISSING}, headers=api.key_headers())

    assert wrong.status_code == 401
    assert right.status_code == 404  # through the key check to the missing judgment
    assert (b"x" * 24, api.api_key.encode()) in compared
    assert (api.api_key.encode(), api.api_key.encode()) in compared


@pytest.mark.parametrize("path", ["/", "/health", "/readyz", "/api/v1/system/status"])
def test_health_and_status_reveal_no_secret_or_internal_address(
    api: TargetApi, database_url: str, path: str
) -> None:
    database = conninfo_to_dict(database_url)
    response = api.client.get(path)

    assert response.status_code == 200, response.text
    assert api.api_key is not None
    for secret in (api.api_key, str(database["password"]), str(database["host"]),
                   f":{database['port']}", str(database["dbname"])):  # fmt: skip
        assert secret not in response.text, path
    assert not any(secret in value for value in response.headers.values()
                   for secret in (api.api_key, str(database["password"])))  # fmt: skip
