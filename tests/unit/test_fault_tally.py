"""A fault test proves its faults hit: FaultTally fails it when too few landed on a job."""

from __future__ import annotations

import pytest

from harness.faults import FaultTally
from harness.faults.audit import FaultFigures


def test_too_few_landed_faults_fail_the_test_naming_the_counts() -> None:
    tally = FaultTally("terminated_backends", minimum=2)
    for landed in (True, False, False):
        tally.count(landed)

    with pytest.raises(AssertionError, match=r"landed 1 < minimum 2 \(3 faults injected\)"):
        tally.require_landed()


def test_enough_landed_faults_pass_and_the_line_reports_them() -> None:
    tally = FaultTally("network_cut", minimum=1)
    tally.count(True)
    tally.require_landed()

    figures = FaultFigures(jobs=6, completed=6, lost=0, reexecuted=1, duplicated=0, applications=7)
    assert tally.line(figures) == (
        "faults: network_cut injected=1 landed=1 lost=0 reexecuted=1 duplicated=0"
    )
