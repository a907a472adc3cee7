"""The target options of harness.targets in pytest: a `target` fixture and the `writes` marker.

    pytest tests/contract --api-url https://api.example.com --db-url "$DB" [--allow-writes]

With no target named the tests check the in-process reference on the test database. A test
marked `writes` is skipped against a named target unless --allow-writes is given, so pointing
the suite at prod never writes by accident.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.targets import (
    ALLOW_WRITES_HELP,
    TARGET_OPTIONS,
    Target,
    TargetError,
    resolve_target,
)

TARGET_KEY = pytest.StashKey[Target]()


def add_target_options(group: pytest.OptionGroup) -> None:
    for option, text in TARGET_OPTIONS:
        group.addoption(option, default=None, help=text)
    group.addoption(
        "--allow-writes",
        action="store_true",
        default=False,
        help=f"{ALLOW_WRITES_HELP}: tests marked `writes` run only then",
    )


def configure_target(config: pytest.Config) -> None:
    """Resolve the target once; unusable options are a usage error before any test runs."""
    names = [option.removeprefix("--").replace("-", "_") for option, _ in TARGET_OPTIONS]
    options: dict[str, object] = {name: config.getoption(name) for name in names}
    options["allow_writes"] = config.getoption("allow_writes")
    try:
        config.stash[TARGET_KEY] = resolve_target(options)
    except TargetError as error:
        raise pytest.UsageError(str(error)) from None


def _target(config: pytest.Config) -> Target:
    return config.stash.get(TARGET_KEY, None) or Target()


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The deployment under test; `target.is_local` when none is named (in-process reference)."""
    return _target(pytestconfig)


def pytest_report_header(config: pytest.Config) -> list[str]:
    chosen = _target(config)
    lines = [
        f"target: {chosen.describe()} ({'writes allowed' if chosen.may_write else 'read-only'})"
    ]
    warning = chosen.write_warning()
    return [*lines, warning] if warning else lines


def pytest_runtest_setup(item: pytest.Item) -> Any:
    chosen = _target(item.config)
    if item.get_closest_marker("writes") is not None and not chosen.may_write:
        pytest.skip(
            f"writes to the named target {chosen.describe()}, which is read-only: "
            "pass --allow-writes to run it"
        )
