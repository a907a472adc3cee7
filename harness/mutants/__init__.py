"""Mutation check of the queue SQL: deliberately broken variants the test suites must kill.

`python -m harness.mutants` (tox -e mutants) applies each mutant of `catalogue.MUTANTS` to a
fresh template, runs the property layer and the hand-written queue tests against it, and
prints which test killed it first. Add a mutant by adding one `Mutant` to the catalogue.
"""
