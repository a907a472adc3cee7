"""The contract suite against a separately started stack, selected with the target options.

The reference API and Ingest Processor run as real processes on this test's database; an inner
pytest runs the target-able contract tests against them through --api-url (the secrets through
their variables, as in CI): read-only first, where every test that writes must be skipped and
nothing may be stored, then with --allow-writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.stack.processes import ReferenceStack
from reference.pooling import connect_kwargs

ROOT = Path(__file__).resolve().parents[2]
TARGETABLE = [
    "tests/contract/test_target_api.py",
    "tests/contract/test_schema_contract.py",
    "tests/contract/test_api_fuzz.py",
]
INNER_TIMEOUT = 300  # seconds for one inner run
FAKE_KEY = "fake-api-key-7c1e0b5d9a-DO-NOT-PRINT"


@dataclass
class InnerRun:
    passed: list[str]
    failed: list[str]
    skipped: dict[str, str]  # test -> reason
    output: str


def run_contract_suite(stack: ReferenceStack, tmp_path: Path, *options: str) -> InnerRun:
    report = tmp_path / f"inner{len(list(tmp_path.glob('*.xml')))}.xml"
    env = {
        **os.environ,
        "DRAGONFLY_TARGET_DB_URL": stack.database_url,
        "DRAGONFLY_API_KEY": stack.api_key,
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *TARGETABLE,
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            f"--junitxml={report}",
            "--api-url",
            stack.api_url,
            *options,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=INNER_TIMEOUT,
        check=False,
    )
    output = completed.stdout + completed.stderr
    passed, failed, skipped = [], [], {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (our own report)
        name = f"{case.get('classname')}::{case.get('name')}"
        skip = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif skip is not None:
            skipped[name] = skip.get("message", "")
        else:
            passed.append(name)
    return InnerRun(passed, failed, skipped, output)


def stored(database_url: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url, **connect_kwargs(database_url)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ops.ingest_batches),"
            " (SELECT count(*) FROM ops.job_queue), (SELECT count(*) FROM public.judgments)"
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.slow
def test_the_contract_suite_runs_against_a_started_stack_and_writes_only_when_allowed(
    reference_stack: ReferenceStack, tmp_path: Path
) -> None:
    reference_stack.api_key = FAKE_KEY
    reference_stack.start_api()
    reference_stack.start_worker("ingest")

    read_only = run_contract_suite(reference_stack, tmp_path)
    after_read_only = stored(reference_stack.database_url)
    writing = run_contract_suite(reference_stack, tmp_path, "--allow-writes")

    assert read_only.failed == [], read_only.output[-6000:]
    assert after_read_only == (0, 0, 0)  # nothing was written without --allow-writes
    write_test = (
        "tests.contract.test_target_api::"
        "test_an_upload_is_ingested_and_its_judgment_can_be_enforced"
    )
    assert "pass --allow-writes" in read_only.skipped[write_test]
    assert "read-only" in read_only.output  # the report header says what the target is
    assert len(read_only.passed) >= 60, read_only.output[-3000:]
    assert writing.failed == [], writing.output[-6000:]
    assert write_test in writing.passed
    assert stored(reference_stack.database_url)[0] >= 1
    for run in (read_only, writing):
        assert FAKE_KEY not in run.output
        assert reference_stack.database_url not in run.output
