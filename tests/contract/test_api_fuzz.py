"""Property-based API testing: schemathesis cases from the committed OpenAPI, against the target.

Every operation gets generated requests (valid ones and, for the negative mode, invalid ones),
with the key for writes and, for half of them, the id of a batch and a job that really exist, so
the cases reach past the 404s. No case may get a 5xx or a response the schema does not describe.
The number of cases per operation is the Hypothesis profile's (see
harness.plugin.hypothesis_profiles), capped at MAX_EXAMPLES here so the default run stays
short; DRAGONFLY_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth

from harness.inputs.csvgen import FILE_KINDS, as_file_kind
from harness.targets.contract import LOCAL_BASE_URL, TargetApi

MAX_EXAMPLES = int(os.environ.get("DRAGONFLY_FUZZ_EXAMPLES", "25"))
SPEC = json.loads(Path(__file__).with_name("openapi.json").read_text())
# Loaded from the committed document (not through a fixture: schemathesis' from_fixture breaks
# on pytest 9.2), so the same cases go to the in-process reference or to a named target.
# Unknown query parameters are ignored, as by most HTTP APIs; they are not a rejection case.
CONFIG = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)
REAL_ID_PARAMETERS = ("batch_id", "job_id")
KEY_HEADER = "X-DRAGONFLY-API-KEY"
LOCAL_HOST = httpx.URL(LOCAL_BASE_URL).host
CURRENT_KEY: dict[str, str] = {}  # the running test's key (set by its fixture), for ApiKeyAuth


@schema.auth(refresh_interval=None)  # each test has its own key: never cache one
class ApiKeyAuth:
    """The target's key on every generated case that carries one (schemathesis knows it is auth)."""

    def get(self, case: Case, context: Any) -> str | None:
        return CURRENT_KEY.get(KEY_HEADER)

    def set(self, case: Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), KEY_HEADER: data}


CSV = (
    "Case Number,Plaintiff,Defendant,Judgment Amount,Filing Date,County\r\n"
    "FZ-1,Acme Funding LLC,John Doe,12.50,01/15/2024,Kings\r\n"
)
CELLS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@st.composite
def simplicity_csv(draw: st.DrawFn) -> bytes:
    """UTF-8 CSV with the Simplicity header and a few rows of any cells (its header repeated
    mid-file in some: a row error, still a valid upload).

    The upload's part is declared text/csv (its `encoding`); JSON Schema cannot say "UTF-8 CSV
    with these columns" about a binary part, so this tells the generator what text/csv is.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV.splitlines()[0].split(","))
    writer.writerows(draw(st.lists(st.lists(CELLS, min_size=6, max_size=6), max_size=4)))
    kind = draw(st.sampled_from(["csv", "csv", "repeated-header"]))
    return as_file_kind(buffer.getvalue().encode(), kind)


# The code each file kind is refused with (harness.inputs.csvgen.FILE_KINDS); None: accepted.
KIND_REFUSALS: dict[str, tuple[int, str] | None] = {
    "csv": None,
    "repeated-header": None,
    "semicolon": (400, "wrong_separator"),
    "tab": (400, "wrong_separator"),
    "pipe": (400, "wrong_separator"),
    "utf-16": (400, "utf16_file"),
    "utf-32": (400, "utf32_file"),
    "gzip": (415, "compressed_file"),
    "bzip2": (415, "compressed_file"),
    "zip": (415, "zip_file"),
    "xlsx": (415, "excel_file"),
    "pdf": (415, "pdf_file"),
}


schemathesis.openapi.media_type("text/csv", simplicity_csv())
# What of a case's requests-style arguments httpx takes (the API uses no cookies).
HTTPX_ARGUMENTS = ("method", "url", "headers", "params", "json", "content", "data", "files")
# Writes the cases make, which only a target that allows writes may receive.
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def created_ids(api: TargetApi) -> dict[str, str]:
    """A batch and its job, made through the API itself (only when writes are allowed)."""
    response = api.client.post(
        "/api/v1/intake/upload",
        params={"force": "true"},
        files={"file": ("fuzz.csv", CSV.encode(), "text/csv")},
        headers=api.key_headers(),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    return {"batch_id": body["batch_id"], "job_id": body["job_id"]}


def as_file_part(part: Any) -> tuple[Any, ...]:
    """A generated multipart part as httpx sends it: values that are not bytes as JSON text."""
    filename, value, *content_type = part if isinstance(part, tuple) else (None, part)
    if isinstance(value, str):
        value = value.encode()
    elif not isinstance(value, bytes):
        value = json.dumps(value).encode()
    return (filename, value, *content_type)


@pytest.fixture
def real_ids(contract_api: TargetApi, target: Any) -> Iterator[dict[str, str]]:
    if contract_api.api_key:
        CURRENT_KEY[KEY_HEADER] = contract_api.api_key
    try:
        yield created_ids(contract_api) if target.may_write and contract_api.api_key else {}
    finally:
        CURRENT_KEY.clear()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_request_breaks_the_contract(
    case: Case,
    contract_api: TargetApi,
    real_ids: dict[str, str],
    target: Any,
) -> None:
    # A write operation is skipped whole on a read-only target; another method sent to a read
    # operation (schemathesis probes those) has no route to write through: it is a 405.
    if case.operation.method.upper() in WRITE_METHODS and not target.may_write:
        pytest.skip("generated writes need --allow-writes against a named target")
    # Half of the cases (chosen by their generated values, so a failure replays) get real ids.
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if positive and case.path_parameters and zlib.crc32(repr(case.path_parameters).encode()) % 2:
        for name in REAL_ID_PARAMETERS:
            if name in case.path_parameters and name in real_ids:
                case.path_parameters[name] = real_ids[name]
    generated = case.as_transport_kwargs(base_url=str(contract_api.client.base_url))
    kwargs = {name: generated[name] for name in HTTPX_ARGUMENTS if generated.get(name) is not None}
    if isinstance(kwargs.get("data"), bytes | str):  # raw bodies (negative cases) are content
        kwargs["content"] = kwargs.pop("data")
    if "files" in kwargs:
        kwargs["files"] = [(name, as_file_part(part)) for name, part in kwargs["files"]]

    request = contract_api.client.build_request(**kwargs)
    request.read()  # multipart bodies stream; the checks read the request again
    response = contract_api.client.send(request)

    # ignored_auth re-sends the request with schemathesis' own HTTP client, which cannot reach
    # the in-process app; against a named target it runs (test_target_api checks every write's
    # refusal either way).
    local = contract_api.client.base_url.host == LOCAL_HOST
    case.validate_response(response, excluded_checks=[ignored_auth] if local else [])


def test_every_file_kind_is_accepted_or_refused_by_its_own_code(
    contract_api: TargetApi, target: Any
) -> None:
    """Schema-valid multipart requests whose file is each kind clients send by mistake."""
    if not target.may_write or not contract_api.api_key:
        pytest.skip("uploads need --allow-writes and the API key against a named target")
    assert set(KIND_REFUSALS) == set(FILE_KINDS)

    @settings(
        max_examples=MAX_EXAMPLES * 2,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(content=simplicity_csv(), kind=st.sampled_from(sorted(FILE_KINDS)))
    def check(content: bytes, kind: str) -> None:
        response = contract_api.client.post(
            "/api/v1/intake/upload",
            params={"force": "true"},
            files={"file": ("fuzz.csv", as_file_kind(content, kind), "text/csv")},
            headers=contract_api.key_headers(),
        )
        expected = KIND_REFUSALS[kind]
        if expected is None:
            assert response.status_code == 202, response.text
        else:
            assert (response.status_code, response.json()["error"]["code"]) == expected, kind

    check()
