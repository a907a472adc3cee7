"""Locust load tests of the queue's claim path. Empty until their issue lands; see SPEC §4."""
