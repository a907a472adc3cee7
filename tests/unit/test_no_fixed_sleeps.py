"""No fixed sleeps and no wall-clock asserts in the tests or the harness's test helpers.

A test waits on a condition with a deadline (`harness.waiting.wait_until`); speed is measured in
benchmarks only. `harness.sleep_lint.ALLOWED` lists the few places where a sleep is the thing
under test, each with its reason.
"""

from __future__ import annotations

import pytest

from harness.sleep_lint import ALLOWED, forbidden, scan, scan_source


def test_no_test_or_helper_sleeps_or_asserts_on_elapsed_time() -> None:
    hits = forbidden()
    assert hits == [], "wait with harness.waiting.wait_until instead:\n" + "\n".join(map(str, hits))


def test_every_allowlist_entry_still_matches_a_hit() -> None:
    """An entry whose sleep is gone is removed, so the list does not grow stale."""
    found = {hit.key for hit in scan()}
    assert sorted(set(ALLOWED) - found) == []


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("import time\ndef test():\n    time.sleep(0.1)\n", "sleep"),
        ("from time import sleep\ndef test():\n    sleep(1)\n", "sleep"),
        ("import asyncio\nasync def test():\n    await asyncio.sleep(0.5)\n", "sleep"),
        ("import anyio\nasync def test():\n    await anyio.sleep(0.02)\n", "sleep"),
        (
            "import time\ndef test():\n    s = time.monotonic()\n    go()\n"
            "    took = time.monotonic() - s\n    assert took < 2\n",
            "wall-clock assert",
        ),
        (
            "import time\ndef test():\n    s = time.perf_counter()\n    go()\n"
            "    assert time.perf_counter() - s < 2\n",
            "wall-clock assert",
        ),
        (
            "import time\nclass T:\n    def run(self):\n        took = time.monotonic() - 1\n"
            "        self.longest = max(self.longest, took)\n"
            "def test(t):\n    assert t.longest < 2.5\n",
            "wall-clock assert",
        ),
    ],
)
def test_the_scan_finds_each_form(source: str, kind: str) -> None:
    assert [hit.kind for hit in scan_source(source, "t.py")] == [kind]


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio\nasync def test():\n    await asyncio.sleep(0)\n",  # a yield, not a wait
        "import time\ndef test():\n    started = time.monotonic()\n    print(started)\n",
        "def test(conn):\n    conn.execute('SELECT pg_sleep(1)')\n",  # the handler's work
        "import time\ndef test():\n    assert time.strftime('%Y')\n",
    ],
)
def test_the_scan_leaves_what_is_no_wait(source: str) -> None:
    assert scan_source(source, "t.py") == []
