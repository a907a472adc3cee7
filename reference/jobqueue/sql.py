"""The queue client's statements, from queries.sql."""

from reference.sqlfile import NamedQueries, QueryNotFoundError

query = NamedQueries("reference.jobqueue", "queries.sql")

__all__ = ["QueryNotFoundError", "query"]
