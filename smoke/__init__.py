"""The prod smoke suite (`python -m smoke`, `dragonfly-harness smoke`): one pass/fail table.

Read-only by default; `--canary` (with `--allow-writes` for a named target) writes only rows it
creates and removes them. See smoke/README-section.md for usage.
"""
