"""Telemetry for tests: the local OTLP collector, the test tracer, span queries."""
