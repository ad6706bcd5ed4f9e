"""One error hierarchy for the Kafka relay and consumer."""

from __future__ import annotations


class StreamError(Exception):
    """Root of every error `threadline.streaming` raises on purpose."""


class PublishFailed(StreamError):
    """The broker did not acknowledge every event of a batch; nothing was checkpointed."""


class BadMessage(StreamError):
    """A record on the topic is not a Threadline event envelope."""


class ConfigurationError(StreamError):
    """Settings that cannot work (unknown database URL scheme, no bootstrap servers...)."""
