"""Questions about one trace's spans, for tests and for the failing-test report.

    trace = SpanQuery(otel_collector.spans()).trace_of(request)
    process = trace.one(name="process ops.job_queue", service="dragonfly-ingest_processor")
    trace.assert_causal(request, process)      # the request is an ancestor of the job
    trace.children(process)                    # the handler's stages

`render` draws the tree one line per span, indented by depth, like siblings counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.telemetry.collector import CollectedSpan

STATUS_ERROR = 2
DB_OPERATION = "_db.operation"  # derived: the query's first word, where no operation is named
# The attributes a reader of a failing test wants on each line, in this order, with short names.
SHOWN_ATTRIBUTES = (
    ("http.route", "route"),
    ("http.response.status_code", "status"),
    ("messaging.message.id", "job"),
    ("dragonfly.job.type", "type"),
    ("db.operation.name", "db.operation"),
    ("db.operation", "db.operation"),
    (DB_OPERATION, "db.operation"),
    ("test.case.result.status", "outcome"),
    ("error.type", "error"),
)
TIMES = "\u00d7"  # the multiplication sign: "claim_pending_job (times)12"
MAX_LINES = 150  # a terminal page or two; the rest is counted, not shown


class SpanQuery:
    """A list of collected spans with lookups by name, service, attributes and by tree."""

    def __init__(self, spans: Iterable[CollectedSpan]) -> None:
        self.spans = list(spans)
        self._by_id = {span.span_id: span for span in self.spans}

    def __len__(self) -> int:
        return len(self.spans)

    def find(
        self,
        name: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> list[CollectedSpan]:
        """The spans that match every given field (attributes: each key has the given value)."""
        return [
            span
            for span in self.spans
            if (name is None or span.name == name)
            and (service is None or span.service == service)
            and (kind is None or span.kind == kind)
            and all(span.attributes.get(k) == v for k, v in (attributes or {}).items())
        ]

    def one(self, **match: Any) -> CollectedSpan:
        """The only span that matches (see `find`); AssertionError naming what there is."""
        found = self.find(**match)
        assert len(found) == 1, (match, len(found), [(s.service, s.name) for s in self.spans])
        return found[0]

    def trace_of(self, span: CollectedSpan) -> SpanQuery:
        """The spans of `span`'s trace."""
        return SpanQuery(s for s in self.spans if s.trace_id == span.trace_id)

    def parent(self, span: CollectedSpan) -> CollectedSpan | None:
        return self._by_id.get(span.parent_span_id) if span.parent_span_id else None

    def children(self, span: CollectedSpan) -> list[CollectedSpan]:
        """The spans whose parent is `span`, earliest first."""
        found = [s for s in self.spans if s.parent_span_id == span.span_id]
        return sorted(found, key=lambda s: s.start_time_unix_nano)

    def ancestors(self, span: CollectedSpan) -> list[CollectedSpan]:
        """The parent, its parent, ... as far as the spans here reach."""
        chain: list[CollectedSpan] = []
        current = self.parent(span)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parent(current)
        return chain

    def subtree(self, span: CollectedSpan) -> SpanQuery:
        """`span` and its descendants."""
        return SpanQuery(s for s in self.spans if s == span or span in self.ancestors(s))

    def root(self, span: CollectedSpan) -> CollectedSpan:
        """The farthest ancestor of `span` held here (`span` itself when it has none here)."""
        chain = self.ancestors(span)
        return chain[-1] if chain else span

    def assert_causal(self, cause: CollectedSpan, effect: CollectedSpan) -> None:
        """`cause` is an ancestor of `effect` in one trace; AssertionError showing the chain."""
        chain = self.ancestors(effect)
        assert cause in chain, (
            f"{cause.service}:{cause.name} is not an ancestor of {effect.service}:{effect.name}; "
            f"its ancestors: {[f'{s.service}:{s.name}' for s in chain]}"
        )

    def roots(self) -> list[CollectedSpan]:
        """Spans whose parent is not here, earliest first."""
        found = [s for s in self.spans if self.parent(s) is None]
        return sorted(found, key=lambda s: s.start_time_unix_nano)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


def _shown(span: CollectedSpan) -> dict[str, Any]:
    """The span's attributes, with the database operation derived from the query text when the
    instrumentation names none (psycopg's spans: named after the database, the text only)."""
    attributes = dict(span.attributes)
    words = str(attributes.get("db.query.text") or attributes.get("db.statement") or "").split()
    if words and "db.operation.name" not in attributes and "db.operation" not in attributes:
        attributes[DB_OPERATION] = words[0].upper()
    return attributes


def _describe(spans: Sequence[CollectedSpan]) -> str:
    """Service, name and the shown attributes that every span of the group has alike."""
    first = spans[0]
    parts = [f"[{first.service}] {first.name}" if first.service else first.name]
    every = [_shown(span) for span in spans]
    shown: set[str] = set()
    for key, label in SHOWN_ATTRIBUTES:
        values = {str(attributes.get(key)) for attributes in every}
        if key in every[0] and len(values) == 1 and label not in shown:
            shown.add(label)
            parts.append(f"{label}={every[0][key]}")
    return " ".join(parts)


@dataclass
class _Group:
    """Sibling spans with the same service, name and status, drawn as one line."""

    spans: list[CollectedSpan]

    def line(self, depth: int) -> str:
        error = self.spans[0].status_code == STATUS_ERROR
        marker = "!! " if error else ""
        status = " ERROR" if error else ""
        seconds = sum(span.seconds for span in self.spans)
        if len(self.spans) == 1:
            return f"{'  ' * depth}{marker}{_describe(self.spans)} {_duration(seconds)}{status}"
        return (
            f"{'  ' * depth}{marker}{_describe(self.spans)} {TIMES}{len(self.spans)} "
            f"(total {_duration(seconds)}){status}"
        )


def _groups(spans: Sequence[CollectedSpan]) -> list[_Group]:
    groups: dict[tuple[str, str, str, int], _Group] = {}
    for span in sorted(spans, key=lambda s: s.start_time_unix_nano):
        operation = str(_shown(span).get(DB_OPERATION, ""))
        key = (span.service, span.name, operation, span.status_code)
        groups.setdefault(key, _Group([])).spans.append(span)
    return list(groups.values())


def render(query: SpanQuery, max_lines: int = MAX_LINES) -> str:
    """The tree of the spans: one line per span (or per group of like siblings), by depth."""
    lines: list[str] = []

    def draw(spans: Sequence[CollectedSpan], depth: int) -> None:
        for group in _groups(spans):
            lines.append(group.line(depth))
            draw([child for span in group.spans for child in query.children(span)], depth + 1)

    draw(query.roots(), 0)
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = [*lines[:max_lines], f"... {hidden} more lines"]
    return "\n".join(lines)
