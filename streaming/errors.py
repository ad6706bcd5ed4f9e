"""One error hierarchy for the Kafka relay and consumer."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class StreamError(ThreadlineError):
    """Root of every error `threadline.streaming` raises on purpose."""


class PublishFailedError(StreamError):
    """The broker did not acknowledge every event of a batch; nothing was checkpointed."""


class BadMessageError(StreamError):
    """A record on the topic is not a Threadline event envelope."""


class StreamConfigurationError(StreamError):
    """Settings that cannot work (unknown database URL scheme, no bootstrap servers...)."""
