"""Bounded polling: every wait in the harness and its tests stops by itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


class WaitTimeoutError(RuntimeError):
    """What was awaited did not happen in time; the message names it."""


def wait_until(
    what: str, check: Callable[[], T | None], timeout: float = 90.0, poll: float = 0.05
) -> T:
    """The first truthy result of `check`, polled every `poll` seconds for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(poll)
    raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


async def wait_until_async(
    what: str, check: Callable[[], T | None], timeout: float = 90.0, poll: float = 0.05
) -> T:
    """`wait_until` for async tests: polls without blocking the event loop."""
    with anyio.move_on_after(timeout):
        while not (result := check()):
            await anyio.sleep(poll)
        return result
    raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
