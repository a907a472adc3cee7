"""The three outputs of a run: the table, JSON and JUnit XML, from the same results."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from smoke.report import as_json, table, write_junit
from smoke.runner import CheckResult, Status

RESULTS = [
    CheckResult("config", Status.PASSED, 0.001, "mode prod: all set"),
    CheckResult("workers", Status.FAILED, 0.25, "ingest_processor: crash loop, 5 starts"),
    CheckResult("canary", Status.SKIPPED, 0.0, "opt-in: pass --canary"),
]


def test_the_table_has_a_marked_row_per_check_and_a_summary() -> None:
    lines = table(RESULTS, 1.5, "mode=prod api=https://api.example.com").splitlines()

    assert lines[0] == "smoke run against mode=prod api=https://api.example.com"
    assert lines[2] == "✓  config     0.00s  mode prod: all set"
    assert lines[3] == "✗  workers    0.25s  ingest_processor: crash loop, 5 starts"
    assert lines[4] == "-  canary     0.00s  opt-in: pass --canary"
    assert lines[5] == "FAILED: 1 passed, 1 failed, 1 skipped in 1.50s"


def test_json_carries_every_check_and_the_exit_code() -> None:
    document = json.loads(as_json(RESULTS, 1.5, "target", 1))

    assert document["exit_code"] == 1
    assert document["summary"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert [c["status"] for c in document["checks"]] == ["passed", "failed", "skipped"]
    assert document["checks"][1]["detail"] == "ingest_processor: crash loop, 5 starts"


def test_junit_marks_failures_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "out" / "smoke.xml"
    write_junit(path, RESULTS, 1.5, "target")

    suite = ElementTree.parse(path).getroot().find("testsuite")  # noqa: S314 - our own file
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["workers"].find("failure")
    assert failure is not None
    assert failure.get("message") == "ingest_processor: crash loop, 5 starts"
    assert cases["canary"].find("skipped") is not None
    assert cases["config"].find("failure") is None
