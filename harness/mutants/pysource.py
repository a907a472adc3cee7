"""Mutants of the workers' critical Python lines: exact-string edits of a copy of `reference`."""

from __future__ import annotations

from harness.mutants.kinds import PyMutant

PY_MUTANTS: list[PyMutant] = []
