"""Shared fixtures. Fixtures that start real servers live in `tests/support/` (one module per
server) and are registered here; add yours to the list."""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.tansu",
]
