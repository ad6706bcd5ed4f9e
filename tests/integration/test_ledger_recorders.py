"""eventsourcing's own recorder contract (ApplicationRecorderTestCase and the
non-interleaving notification ids case), run against Threadline's recorder subclasses: the
event-id extension must not break anything eventsourcing relies on."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from threadline.ledger.postgres import (
    ListenFirstSubscription,
    PostgresLedgerRecorder,
    datastore_from_url,
)
from threadline.ledger.recorders import POPOLedgerRecorder, SQLiteLedgerRecorder


class TestPOPOLedgerRecorder(ApplicationRecorderTestCase[POPOApplicationRecorder]):
    def new_originator_id(self) -> str:
        return str(uuid4())

    def create_recorder(self) -> POPOApplicationRecorder:
        return POPOLedgerRecorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class SQLiteFileCase:
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="threadline-es-"))
        self.datastores: list[SQLiteDatastore] = []
        self.threads_before = set(threading.enumerate())

    def tearDown(self) -> None:
        # eventsourcing's concurrency cases signal their reader threads to stop but do not
        # join them; closing a connection a reader is still using crashes sqlite3 (SIGSEGV).
        for thread in set(threading.enumerate()) - self.threads_before:
            thread.join(timeout=10)
        for datastore in self.datastores:
            datastore.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def new_originator_id(self) -> str:
        return str(uuid4())

    def create_recorder(self) -> SQLiteLedgerRecorder:
        datastore = SQLiteDatastore(str(self.dir / "es.db"), originator_id_type="text")
        self.datastores.append(datastore)
        recorder = SQLiteLedgerRecorder(datastore)
        recorder.create_table()
        return recorder


class TestSQLiteLedgerRecorder(SQLiteFileCase, ApplicationRecorderTestCase[SQLiteLedgerRecorder]):
    pass


class TestSQLiteLedgerRecorderNonInterleaving(
    SQLiteFileCase, NonInterleavingNotificationIDsBaseCase
):
    pass


@pytest.mark.postgres
class PostgresCase:
    url: str
    datastores: list[Any]

    @pytest.fixture(autouse=True)
    def _database(self, fresh_postgres_url: str) -> Iterator[None]:
        self.url = fresh_postgres_url
        self.datastores = []
        yield
        for datastore in self.datastores:
            datastore.close()

    def new_originator_id(self) -> str:
        return str(uuid4())

    def create_recorder(self) -> PostgresLedgerRecorder:
        datastore = datastore_from_url(self.url)
        self.datastores.append(datastore)
        recorder = PostgresLedgerRecorder(datastore)
        recorder.create_table()
        return recorder


class TestPostgresLedgerRecorder(PostgresCase, ApplicationRecorderTestCase[PostgresLedgerRecorder]):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_event_committed_while_listen_starts_is_delivered(self) -> None:
        """A loaded machine may run the LISTEN thread late. eventsourcing's subscription read
        first and missed the NOTIFY of an event committed in between: it waited forever."""
        listen = ListenFirstSubscription._listen

        def late_listen(subscription: ListenFirstSubscription) -> None:
            time.sleep(0.5)
            listen(subscription)

        recorder = self.create_recorder()
        first, second = (
            StoredEvent(self.new_originator_id(), 1, "topic", b"state") for _ in range(2)
        )
        recorder.insert_events([first])
        received: list[str] = []
        with (
            mock.patch.object(ListenFirstSubscription, "_listen", late_listen),
            recorder.subscribe(gt=0) as subscription,
        ):

            def consume() -> None:
                for notification in subscription:
                    received.append(notification.originator_id)
                    if len(received) == 2:
                        return

            reader = threading.Thread(target=consume)
            reader.start()
            recorder.insert_events([second])  # at once, while the LISTEN is still late
            reader.join(timeout=20)
            alive = reader.is_alive()
            subscription.stop()
        reader.join(timeout=20)
        assert not alive, "the second event was never announced"
        assert received == [first.originator_id, second.originator_id]


class TestPostgresLedgerRecorderNonInterleaving(
    PostgresCase, NonInterleavingNotificationIDsBaseCase
):
    pass
