"""The harness's own statements, from queries.sql."""

from reference.sqlfile import NamedQueries

query = NamedQueries("harness", "queries.sql")
