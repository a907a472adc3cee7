"""Totals of what the queue state machine did, printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

TOTALS_KEY = pytest.StashKey[Counter[str]]()


@pytest.fixture
def machine_totals(pytestconfig: pytest.Config) -> Counter[str]:
    """Counts of the machine's outcomes (claims, completions, dead-letters...) for this run."""
    return pytestconfig.stash.setdefault(TOTALS_KEY, Counter())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    totals = config.stash.get(TOTALS_KEY, None)
    if not totals:
        return
    terminalreporter.write_sep("-", "queue state machine: totals over the run")
    for what, count in sorted(totals.items()):
        terminalreporter.write_line(f"{what:>28}: {count}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the counts check right after its state machine, whatever the test order.

    It reads what the machine did; pytest-randomly (tryfirst) shuffles before this runs, and a
    check shuffled ahead of the machine would only skip.
    """
    for check in [item for item in items if item.name == "test_the_machine_reached_the_counts"]:
        machine_id = check.nodeid.rsplit("::", 1)[0] + "::TestQueueModelMachine"
        items.remove(check)
        machines = [n for n, item in enumerate(items) if item.nodeid.startswith(machine_id)]
        items.insert(max(machines) + 1 if machines else len(items), check)
