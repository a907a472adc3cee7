"""The run's results as a table for people, JSON for machines and JUnit XML for CI."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

from smoke.runner import CheckResult, Status

MARKS = {Status.PASSED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-"}


def summary(results: Sequence[CheckResult], seconds: float) -> str:
    counts = Counter(result.status for result in results)
    return (
        f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
        f"{counts[Status.SKIPPED]} skipped in {seconds:.2f}s"
    )


def table(results: Sequence[CheckResult], seconds: float, target: str) -> str:
    width = max([len("check"), *(len(result.name) for result in results)])
    lines = [f"smoke run against {target}", f"   {'check':<{width}}  {'time':>7}  detail"]
    lines += [
        f"{MARKS[r.status]}  {r.name:<{width}}  {r.seconds:>6.2f}s  {r.detail}" for r in results
    ]
    verdict = "FAILED" if any(r.status is Status.FAILED for r in results) else "OK"
    lines.append(f"{verdict}: {summary(results, seconds)}")
    return "\n".join(lines)


def as_json(results: Sequence[CheckResult], seconds: float, target: str, exit_code: int) -> str:
    counts = Counter(result.status.value for result in results)
    document = {
        "target": target,
        "exit_code": exit_code,
        "seconds": round(seconds, 3),
        "summary": {status.value: counts[status.value] for status in Status},
        "checks": [
            {
                "name": r.name,
                "status": r.status.value,
                "seconds": round(r.seconds, 3),
                "detail": r.detail,
            }
            for r in results
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def write_junit(path: Path, results: Sequence[CheckResult], seconds: float, target: str) -> None:
    counts = Counter(result.status for result in results)
    suite = ElementTree.Element(
        "testsuite",
        name="dragonfly-smoke",
        tests=str(len(results)),
        failures=str(counts[Status.FAILED]),
        errors="0",
        skipped=str(counts[Status.SKIPPED]),
        time=f"{seconds:.3f}",
    )
    ElementTree.SubElement(
        ElementTree.SubElement(suite, "properties"), "property", name="target", value=target
    )
    for result in results:
        case = ElementTree.SubElement(
            suite, "testcase", classname="smoke", name=result.name, time=f"{result.seconds:.3f}"
        )
        if result.status is Status.FAILED:
            ElementTree.SubElement(case, "failure", message=result.detail).text = result.detail
        elif result.status is Status.SKIPPED:
            ElementTree.SubElement(case, "skipped", message=result.detail)
        else:
            ElementTree.SubElement(case, "system-out").text = result.detail
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ElementTree.Element("testsuites")
    root.append(suite)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
