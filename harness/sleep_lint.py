"""Find fixed sleeps and wall-clock asserts in the tests and the harness's test helpers.

A test waits on a condition with a deadline (`harness.waiting.wait_until`); speed is measured in
benchmarks only. This scan (run by tests/unit/test_no_fixed_sleeps.py, or `python -m
harness.sleep_lint`) parses each module with `ast` and reports:

- `sleep`: a call to `time.sleep` (also `from time import sleep`), or to `asyncio.sleep` /
  `anyio.sleep` / `trio.sleep` with anything but a literal 0 (which only yields);
- `wall-clock assert`: an `assert` that reads a clock (`time.monotonic()`, `perf_counter()`,
  `time.time()`, their `_ns` forms) directly, or through a local name or an attribute
  (`self.longest = max(self.longest, took)`) assigned from one.

A hit is allowed only by an entry of `ALLOWED`: (path, enclosing function, kind) with the reason.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCKS = frozenset(
    {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns"}
)
ASYNC_SLEEPS = frozenset({"asyncio", "anyio", "trio"})
# Benchmarks measure speed and pace their simulated work on purpose.
NOT_SCANNED = ("harness/bench/", "harness/bench_")

ALLOWED: dict[tuple[str, str, str], str] = {
    ("harness/waiting.py", "wait_until", "sleep"): (
        "the poll interval of the bounded wait itself: every other wait goes through it"
    ),
    ("harness/waiting.py", "wait_until_async", "sleep"): "the same, for async tests",
    ("harness/faults/__init__.py", "crash_and_restart", "sleep"): (
        "the outage is the fault: the server stays down for `downtime` seconds"
    ),
    (
        "tests/faults/test_database_faults.py",
        "test_a_network_cut_loses_and_duplicates_nothing",
        "sleep",
    ): "the cut's length is the fault (held once the cut is seen in effect)",
    ("tests/hostile/test_hostile_http.py", "exchange", "sleep"): (
        "the gap between body parts is the slow client under test (0 for the fast ones)"
    ),
    ("tests/integration/test_worker_job_limits.py", "__call__", "sleep"): (
        "a handler that must be slow (stuck in Python) to be killed by the job time limit"
    ),
}


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    function: str
    kind: str  # "sleep" or "wall-clock assert"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.function, self.kind)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} in {self.function}"


def _dotted(node: ast.expr) -> tuple[str, str] | None:
    """("time", "sleep") for `time.sleep`, ("", "sleep") for a bare `sleep`."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    if isinstance(node, ast.Name):
        return "", node.id
    return None


class _Scan(ast.NodeVisitor):
    def __init__(self, path: str, from_time: set[str], clock_attributes: set[str]) -> None:
        self.path = path
        self.from_time = from_time  # names imported with `from time import ...`
        self.clock_attributes = clock_attributes  # attribute names ever assigned a clock reading
        self.function = "<module>"
        self.clock_names: set[str] = set()
        self.hits: list[Hit] = []

    def _hit(self, node: ast.AST, kind: str) -> None:
        self.hits.append(Hit(self.path, getattr(node, "lineno", 0), self.function, kind))

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, outer_names = self.function, self.clock_names
        self.function, self.clock_names = node.name, set()
        self.generic_visit(node)
        self.function, self.clock_names = outer, outer_names

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def _is_clock(self, node: ast.AST) -> bool:
        if not isinstance(node, ast.Call) or (name := _dotted(node.func)) is None:
            return False
        module, attr = name
        return attr in CLOCKS and (module == "time" or (module == "" and attr in self.from_time))

    def _reads_clock(self, node: ast.AST) -> bool:
        return any(
            self._is_clock(sub)
            or (isinstance(sub, ast.Name) and sub.id in self.clock_names)
            or (isinstance(sub, ast.Attribute) and sub.attr in self.clock_attributes)
            for sub in ast.walk(node)
        )

    def _assigned(self, targets: list[ast.expr], value: ast.expr | None) -> None:
        if value is None or not self._reads_clock(value):
            return
        self.clock_names |= {t.id for t in targets if isinstance(t, ast.Name)}
        self.clock_attributes |= {t.attr for t in targets if isinstance(t, ast.Attribute)}

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assigned(node.targets, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._assigned([node.target], node.value)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        if self._reads_clock(node.test):
            self._hit(node, "wall-clock assert")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (name := _dotted(node.func)) is not None and self._is_sleep(*name, node):
            self._hit(node, "sleep")
        self.generic_visit(node)

    def _is_sleep(self, module: str, attr: str, call: ast.Call) -> bool:
        if attr != "sleep":
            return False
        if module in ASYNC_SLEEPS:
            return not _yields_only(call)
        return module == "time" or (module == "" and "sleep" in self.from_time)


def _yields_only(call: ast.Call) -> bool:
    """`asyncio.sleep(0)`: a yield to the event loop, not a wait."""
    return (
        len(call.args) == 1 and isinstance(call.args[0], ast.Constant) and call.args[0].value == 0
    )


def scan_source(source: str, path: str) -> list[Hit]:
    tree = ast.parse(source, filename=path)
    from_time = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "time"
        for alias in node.names
    }
    # Twice: the first pass learns which attributes hold clock readings, wherever assigned.
    first = _Scan(path, from_time, set())
    first.visit(tree)
    scan = _Scan(path, from_time, first.clock_attributes)
    scan.visit(tree)
    return scan.hits


def scanned_files(root: Path = ROOT) -> list[Path]:
    files = sorted((root / "tests").rglob("*.py")) + sorted((root / "harness").rglob("*.py"))
    return [f for f in files if not f.relative_to(root).as_posix().startswith(NOT_SCANNED)]


def scan(root: Path = ROOT) -> list[Hit]:
    """Every hit in the scanned files, allowed or not."""
    return [
        hit
        for file in scanned_files(root)
        for hit in scan_source(file.read_text(), file.relative_to(root).as_posix())
    ]


def forbidden(root: Path = ROOT) -> list[Hit]:
    return [hit for hit in scan(root) if hit.key not in ALLOWED]


def main() -> int:
    hits = forbidden()
    for hit in hits:
        print(hit)
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
