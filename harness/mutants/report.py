"""The table `python -m harness.mutants` prints: one line per mutant and suite."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def target(self) -> str: ...


@dataclass(frozen=True)
class Outcome:
    killed_by: str | None  # the first failing test, None when the mutant survived
    seconds: float
    error: str | None = None  # the run broke before any test failed (counts as no kill)
    failures: tuple[str, ...] = ()  # every failing test's id


def print_table(
    mutants: Sequence[Named],
    suites: list[str],
    outcomes: dict[tuple[str, str], Outcome],
    seed: int,
) -> int:
    """Print the table; 1 when a mutant survived the property layer or every suite it ran."""
    survivors, gaps = [], []
    print(f"\nmutants (Hypothesis seed {seed}, derandomized: rerun with --seed {seed})")
    print(f"{'mutant':<38} {'object':<42} {'suite':<12} {'first killing test':<60} {'s':>6}")
    for mutant in mutants:
        name, target = mutant.name, mutant.target  # printed on the mutant's first line only
        ran = [s for s in suites if (mutant.name, s) in outcomes]
        for suite in ran:
            outcome = outcomes[(mutant.name, suite)]
            if outcome.killed_by is None:
                gaps.append(f"{mutant.name} ({suite})")
            survived = "ERROR (see above)" if outcome.error else "SURVIVED"
            label = (outcome.killed_by or survived).split("::", 1)[-1]  # without the path
            print(f"{name:<38} {target[:42]:<42} {suite:<12} {label[:60]:<60} "
                  f"{outcome.seconds:6.1f}")  # fmt: skip
            name, target = "", ""
        killers = [outcomes[(mutant.name, s)].killed_by for s in ran]
        property_run = outcomes.get((mutant.name, "property"))
        if not any(killers) or (property_run is not None and not property_run.killed_by):
            survivors.append(mutant.name)
    runs = len(outcomes)
    print(f"\n{runs - len(gaps)} of {runs} mutant runs killed")
    if gaps:
        print("not killed by that suite alone: " + ", ".join(gaps))
    if survivors:
        print("SURVIVED (the property layer or every suite): " + ", ".join(survivors))
        return 1
    return 0
