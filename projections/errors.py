"""One error hierarchy for projections; the API edge and the CLI map these to responses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class ProjectionError(ThreadlineError):
    """Root of every error projections raise on purpose."""


class UnknownProjectionError(ProjectionError):
    """No projection of that name is registered."""
