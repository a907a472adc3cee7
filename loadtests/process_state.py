"""State one Locust process keeps for the whole run: its recorder."""

from __future__ import annotations

from loadtests.records import Recorder

_recorders: dict[str, Recorder] = {}


def recorder_for(run_id: str) -> Recorder:
    """This process's recorder for `run_id` (created on first use)."""
    if run_id not in _recorders:
        _recorders[run_id] = Recorder(run_id)
    return _recorders[run_id]
