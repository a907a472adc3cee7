"""Shared test configuration; the database fixtures come from the installed harness plugin."""

pytest_plugins = ["pytester"]
