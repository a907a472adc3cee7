"""Shared test configuration; the database fixtures come from the installed harness plugin."""

from harness.plugin.hypothesis_profiles import register_profiles

pytest_plugins = ["pytester"]

# Profiles fast / ci (default) / nightly / mutants, chosen with --hypothesis-profile NAME.
register_profiles()
