"""Named SQL statements loaded once from queries.sql (`-- name: <name>` headers)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

NAME_HEADER = re.compile(r"^-- name: (?P<name>\w+)\s*$", re.MULTILINE)


class QueryNotFoundError(KeyError):
    """No statement with that name exists in queries.sql."""


@cache
def _load() -> dict[str, bytes]:
    text = (resources.files("reference.jobqueue") / "queries.sql").read_text("utf-8")
    headers = list(NAME_HEADER.finditer(text))
    queries: dict[str, bytes] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body = text[header.end() : following.start() if following else len(text)]
        # Drop the description comment lines; the statement is what remains.
        statement = "\n".join(
            line for line in body.strip().splitlines() if not line.lstrip().startswith("--")
        )
        queries[header["name"]] = statement.encode()
    return queries


def query(name: str) -> bytes:
    """The statement called `name`."""
    try:
        return _load()[name]
    except KeyError:
        raise QueryNotFoundError(f"no query named {name!r} in queries.sql") from None
