"""Named SQL statements loaded once from a package's .sql file (`-- name: <name>` headers).

Like procrastinate's queries.sql: each statement follows a `-- name:` line and a one-line
`--` description, and takes `%(param)s` placeholders.
"""

from __future__ import annotations

import re
from importlib import resources

NAME_HEADER = re.compile(r"^-- name: (?P<name>\w+)\s*$", re.MULTILINE)


class QueryNotFoundError(KeyError):
    """No statement with that name exists in the .sql file."""


def load_named_queries(package: str, filename: str) -> dict[str, bytes]:
    """Every statement of `package/filename`, by name, comment lines removed."""
    text = (resources.files(package) / filename).read_text("utf-8")
    headers = list(NAME_HEADER.finditer(text))
    queries: dict[str, bytes] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body = text[header.end() : following.start() if following else len(text)]
        statement = "\n".join(
            line for line in body.strip().splitlines() if not line.lstrip().startswith("--")
        )
        queries[header["name"]] = statement.encode()
    return queries


class NamedQueries:
    """The statements of one .sql file, read on first use."""

    def __init__(self, package: str, filename: str) -> None:
        self.package = package
        self.filename = filename
        self._queries: dict[str, bytes] | None = None

    def __call__(self, name: str) -> bytes:
        """The statement called `name`."""
        if self._queries is None:
            self._queries = load_named_queries(self.package, self.filename)
        try:
            return self._queries[name]
        except KeyError:
            raise QueryNotFoundError(f"no query named {name!r} in {self.filename}") from None

    def names(self) -> list[str]:
        if self._queries is None:
            self._queries = load_named_queries(self.package, self.filename)
        return list(self._queries)
