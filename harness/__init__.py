"""dragonfly-harness: the pytest plugin and the Postgres, process and telemetry orchestration.

Its rooms, from the top down (import-linter's layers contract in pyproject.toml keeps the
arrows pointing down; rooms on one line do not import each other):

- `cli`: the `dragonfly-harness` command; imports smoke and loadtests at their commands.
- `plugin/`: the pytest plugin (entry point `pytest11`): fixtures, target options, Hypothesis
  profiles, one trace per test. `bench/`: the claim and ingest benchmarks. `mutants/`: the
  mutation check of the queue SQL and the workers' critical lines.
- `faults/`: fault injection as one-line calls, the observed moments to strike at, the
  exactly-once audit. `schema/`: migrate, the schema snapshot, squawk, the access matrix.
- `stack/`: the reference services as processes, `up`, the demo, log tails, the in-process
  ASGI client. `targets/`: the deployment a suite checks (SPEC section 5).
- `postgres/`: the three Postgres sources, PgBouncer, per-test databases. `telemetry/`: the
  OTLP collector, the test tracer, span queries. `model/`: the queue model and the history
  checker. `inputs/`: CSV generation and uploads.
- basics every room may use: `waiting`, `sql`, `network`, `secret_files`, `sleep_lint`.
"""
