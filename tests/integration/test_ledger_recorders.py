"""eventsourcing's own recorder contract (ApplicationRecorderTestCase and the
non-interleaving notification ids case), run against Threadline's recorder subclasses: the
event-id extension must not break anything eventsourcing relies on."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from ledger.postgres import PostgresLedgerRecorder, datastore_from_url
from ledger.recorders import POPOLedgerRecorder, SQLiteLedgerRecorder


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


class TestPostgresLedgerRecorderNonInterleaving(
    PostgresCase, NonInterleavingNotificationIDsBaseCase
):
    pass
