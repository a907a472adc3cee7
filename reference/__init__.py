"""Reference implementation of the Dragonfly backend: the system under test."""
