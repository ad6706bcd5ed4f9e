"""Throwaway real servers and seed data shared by the tests and the benchmarks: a PostgreSQL
cluster, the Tansu Kafka-protocol broker, the API server as a subprocess, event seeding.

Not product code and never installed (only `threadline` is): tests reach it through
`tests/support/` (which adds the pytest fixtures), benchmarks import it directly, so that
benchmarks never import `tests`.
"""
