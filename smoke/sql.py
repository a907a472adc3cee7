"""The smoke suite's statements, from queries.sql."""

from reference.sqlfile import NamedQueries

query = NamedQueries("smoke", "queries.sql")
