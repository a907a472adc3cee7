"""The migration runner's statements, from queries.sql."""

from reference.sqlfile import NamedQueries

query = NamedQueries("reference.db", "queries.sql")
