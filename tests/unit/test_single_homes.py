"""One home each: the mask of a secret, the claim's batch limit and the default lease.

Each value is written once (its home) and imported everywhere else; a literal copy elsewhere in
the Python packages fails here, since a copy drifts when the home changes. The SQL keeps its own
(ops.claim_pending_job's limit, ops.default_lock_timeout()); the migrations are history.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reference", "harness", "smoke", "loadtests")
MASK_HOME = "reference/masking.py"
QUEUE_HOME = "reference/jobqueue/client.py"  # MAX_BATCH_SIZE and DEFAULT_LOCK_TIMEOUT

# A text that states the batch limit (an error message, a help text) or the default lease.
_BATCH_TEXT = re.compile(r"\b1 (?:to|and) 1000\b|\(1-1000\)|at most 1000\b")
_LEASE_TEXT = re.compile(r"interval '30 minutes'|\b1800\b")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _is_mask(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == "***"


def _is_batch_limit(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):  # `1 <= size <= 1000`, `len(ids) > 1000`
        operands = [node.left, *node.comparators]
        return any(isinstance(o, ast.Constant) and o.value == 1000 for o in operands)
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and bool(_BATCH_TEXT.search(node.value))
    )


def _is_lease(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):  # timedelta(minutes=30), timedelta(seconds=1800)
        given = {k.arg: k.value for k in node.keywords}
        return any(
            isinstance(given.get(unit), ast.Constant) and given[unit].value == value  # type: ignore[union-attr]
            for unit, value in (("minutes", 30), ("seconds", 1800))
        )
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return bool(_LEASE_TEXT.search(node.value))
        return type(node.value) in (int, float) and node.value == 1800
    return False


def _copies(is_copy: Callable[[ast.AST], bool], home: str) -> list[str]:
    return [
        f"{name}:{node.lineno}"
        for name, module in _modules()
        if name != home
        for node in ast.walk(module)
        if is_copy(node) and hasattr(node, "lineno")
    ]


def test_the_mask_is_written_only_in_reference_masking() -> None:
    copies = _copies(_is_mask, MASK_HOME)
    assert not copies, f"import MASK or masker from reference.masking instead: {copies}"


def test_the_batch_limit_is_written_only_in_the_queue_client() -> None:
    copies = _copies(_is_batch_limit, QUEUE_HOME)
    assert not copies, f"import MAX_BATCH_SIZE from reference.jobqueue instead: {copies}"


def test_the_default_lease_is_written_only_in_the_queue_client() -> None:
    copies = _copies(_is_lease, QUEUE_HOME)
    assert not copies, (
        "import DEFAULT_LOCK_TIMEOUT from reference.jobqueue (SQL: ops.default_lock_timeout()) "
        f"instead: {copies}"
    )


def test_the_checks_see_a_copy() -> None:
    """The checks themselves catch each form of copy (else they would pass on anything)."""
    samples = {
        _is_mask: 'x = "***"',
        _is_batch_limit: "ok = 1 <= n <= 1000",
        _is_lease: "t = timedelta(minutes=30)",
    }
    for is_copy, source in samples.items():
        assert any(is_copy(node) for node in ast.walk(ast.parse(source))), source
    assert _is_batch_limit(ast.Constant("a claim takes 1 to 1000 jobs"))
    assert _is_lease(ast.Constant("ops.clock() + interval '30 minutes'"))
