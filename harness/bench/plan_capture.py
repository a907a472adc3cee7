"""Plans of the statements inside the queue's functions, as PostgreSQL ran them.

EXPLAIN of `SELECT ops.complete_job(...)` shows only a function call; auto_explain with
log_nested_statements logs each statement the function runs, with its real plan and the shared
buffers it touched. The log lines reach the client as notices (client_min_messages = log).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg

Plan = dict[str, Any]
AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_format = 'json'",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET client_min_messages = log",
)


class NestedPlans:
    """Turns auto_explain on for one connection and keeps the plans of what it runs next."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.messages: list[str] = []
        for statement in AUTO_EXPLAIN:
            conn.execute(statement.encode())
        # A Diagnostic is only valid inside the handler: copy the text out.
        conn.add_notice_handler(lambda diag: self.messages.append(diag.message_primary or ""))

    def run(self, statement: str, params: Any = None, *, containing: str) -> tuple[list[Any], Plan]:
        """Rows of `statement`, and the plan of the nested statement whose text has `containing`."""
        self.messages.clear()
        rows = self.conn.execute(statement.encode(), params).fetchall()
        plans = [json.loads(m.partition("plan:\n")[2]) for m in self.messages if "plan:\n" in m]
        matching = [plan for plan in plans if containing in plan["Query Text"]]
        if len(matching) != 1:
            texts = [plan["Query Text"][:80] for plan in plans]
            raise LookupError(f"expected one plan containing {containing!r}, got {texts}")
        return rows, matching[0]


def buffers(node: Plan) -> int:
    """Shared buffers a plan node (and everything under it) touched."""
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


def nodes(plan: Plan) -> Iterator[Plan]:
    """Every node of a plan, depth first."""
    stack = [plan.get("Plan", plan)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans", [])))


def table_scans(plan: Plan, table: str = "job_queue") -> list[tuple[str, str | None]]:
    """(node type, index) of every read of `table` (not the ModifyTable node itself); a bitmap
    heap scan names the indexes of its bitmap index scans."""
    scans: list[tuple[str, str | None]] = []
    for node in nodes(plan):
        if node.get("Relation Name") != table or node["Node Type"] == "ModifyTable":
            continue
        index = node.get("Index Name")
        if node["Node Type"] == "Bitmap Heap Scan":
            bitmaps = [child.get("Index Name") for child in nodes(node) if child is not node]
            index = ",".join(sorted(name for name in bitmaps if name)) or None
        scans.append((node["Node Type"], index))
    return scans
