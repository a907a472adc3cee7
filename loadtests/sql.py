"""The load tests' own statements, from queries.sql."""

from reference.sqlfile import NamedQueries

query = NamedQueries("loadtests", "queries.sql")
