"""Hypothesis profiles for the property layer, picked with `--hypothesis-profile NAME`.

- `fast`: a quick local look (seconds).
- `ci` (the default): the counts the CI run must reach (`MINIMUM_COUNTS`).
- `nightly`: many more examples and longer histories, outside CI.
- `mutants`: `ci` without shrinking: the mutation check only needs the first failure.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

DEFAULT_PROFILE = "ci"
_COMMON = {
    "deadline": None,
    "derandomize": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
PROFILES: dict[str, dict[str, object]] = {
    "fast": {"max_examples": 10, "stateful_step_count": 30},
    "ci": {"max_examples": 120, "stateful_step_count": 80},
    "nightly": {"max_examples": 2000, "stateful_step_count": 100},
    "mutants": {
        # At 120 examples extend-no-refresh once survived the state machine in a CI run.
        "max_examples": 300,
        "stateful_step_count": 80,
        "phases": [Phase.explicit, Phase.generate],
        "report_multiple_bugs": False,
        "database": None,  # a mutant's failures must not be replayed against the real SQL
    },
}
# What one run of the queue state machine must reach under each profile (none for `fast`).
MINIMUM_COUNTS: dict[str, dict[str, int]] = {
    "ci": {
        "committed claims": 200,
        "completions": 100,
        "dead-letters": 30,
        "reaped jobs": 30,
        "refused stale-owner calls": 30,
    },
}
MINIMUM_COUNTS["nightly"] = MINIMUM_COUNTS["ci"]
# Operations the concurrent history run performs under each profile (threads x operations).
HISTORY_OPERATIONS = {"fast": 800, "ci": 8000, "nightly": 80000, "mutants": 8000}


def register_profiles() -> None:
    """Register every profile and load the default unless one was loaded already."""
    for name, values in PROFILES.items():
        settings.register_profile(name, **{**_COMMON, **values})  # type: ignore[arg-type]
    # Reload even when one is loaded: Hypothesis loads its own `ci` profile when CI is set,
    # and re-registering a name does not change the settings already loaded under it.
    loaded = settings.get_current_profile_name()
    settings.load_profile(DEFAULT_PROFILE if loaded == "default" else loaded)


def current_profile() -> str:
    return settings.get_current_profile_name()
