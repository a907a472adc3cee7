"""`dragonfly-harness bench-claim --quick --json`, with tiny counts: the command runs every
case of the six target ratios (pgbench bare and through the functions, the paced tails, the
batch drains, pgqueuer, Locust beside direct threads) and prints one JSON object whose ratios
are positive finite numbers. A test of the command, not of its speed: no figure is judged."""

from __future__ import annotations

import json
import math

import pytest

from harness import cli
from harness.bench import claim as bench_claim
from harness.bench.ratio_run import Sizes
from harness.bench.ratio_table import KEYS

pytestmark = pytest.mark.slow

TINY = Sizes(
    pgbench_seconds=1,
    backlog=12_000,
    drain_jobs=400,
    history=2_000,
    locust_jobs=400,
    locust_users=2,
    locust_batch=10,
)


def test_quick_json_prints_every_ratio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_claim, "QUICK", TINY)
    code = cli.main(["bench-claim", "--quick", "--json", "--repeat", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)  # stdout is the JSON object alone: progress went to stderr
    for key in KEYS:
        value = report[key]
        assert isinstance(value, float), (key, value)
        assert math.isfinite(value), (key, value)
        assert value > 0, (key, value)
        assert report[f"{key}_min"] <= value <= report[f"{key}_max"], key
    assert report["repetitions"] == 1
    assert len(report["load_averages"]) == 1


def test_repeat_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench-claim", "--quick", "--json", "--repeat", "0"]) == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err
