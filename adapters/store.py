"""The event store: eventsourcing's application on SQLite (default) or PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from adapters.changes import AggregateCache, ChangeFeed
from adapters.persistence import LedgerRecorder
from adapters.sql import Database, ReadPool

SELECT_MANY = "SELECT originator_id, originator_version, topic, state"
ORDER_MANY = "ORDER BY originator_id, originator_version"


def mutate_all(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate with the events applied in turn: the library's `project_aggregate`
    without its check of each event against a runtime protocol (about 20 µs an event on
    Python 3.11; our events are the library's own classes)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class EventStore(Application[UUID]):
    """Holds every aggregate of every practice; events are never edited."""

    name = "payledger"
    _database: Database | None = None
    #: practices and users kept in the process (PostgreSQL only: adapters/changes.py)
    cache: AggregateCache | None = None
    _feed: ChangeFeed | None = None
    _cached_kinds: tuple[type, ...] = ()

    def start_cache(self, kinds: tuple[type, ...]) -> None:
        """Keep aggregates of these kinds in the process, evicted by the change feed (on
        PostgreSQL; on SQLite every read goes to the file)."""
        if not self.is_postgres or self.cache is not None:
            return
        self._cached_kinds = kinds
        self.cache = AggregateCache()
        self._feed = ChangeFeed(self.conninfo(), self.cache).start()
        self._feed.wait_live(2.0)

    def load(self, aggregate_id: UUID) -> Any:
        """An aggregate by id (AggregateNotFoundError when it has no events); one of a
        cached kind comes from the cache when it has it."""
        if self.cache is None:
            return self.repository.get(aggregate_id, projector_func=mutate_all)
        return self.cache.get(
            aggregate_id,
            lambda: self.repository.get(aggregate_id, projector_func=mutate_all),
            lambda found: isinstance(found, self._cached_kinds),
        )

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The aggregates' pending events, put in the store in one transaction. As the
        library's `save` (with no snapshots or aggregate cache of the library's to keep,
        and no followers to notify), without its runtime protocol checks of each object,
        which cost about 20 µs each on Python 3.11 (a bulk saves thousands of them)."""
        if self.snapshots is not None or self.repository.cache is not None:
            recordings = super().save(*objs, **kwargs)  # the library's, which keeps them
        else:
            events = [e for obj in objs if obj is not None for e in obj.collect_events()]
            recordings = self.events.put(events, **kwargs)
        if self.cache is not None:  # this process reads its own writes at once
            self.cache.evict({r.domain_event.originator_id for r in recordings})
        return recordings

    @property
    def ledger_recorder(self) -> LedgerRecorder:
        """The recorder (adapters/persistence.py): the views' hook, the statements written
        without events, the transactions' counters."""
        recorder = self.recorder
        assert isinstance(recorder, LedgerRecorder), type(recorder)
        return recorder

    @property
    def group_commit(self) -> LedgerRecorder | None:
        """On PostgreSQL, the recorder that shares transactions among concurrent saves."""
        return self.ledger_recorder if self.is_postgres else None

    def database(self) -> Database:
        """The tables beside the events: written in the store's transactions, read on a
        pool of connections of their own. One per store, closed with it."""
        if self._database is None:
            datastore = self.recorder.datastore  # type: ignore[attr-defined]
            self._database = Database(datastore, postgres=self.is_postgres, reads=self.read_pool())
        return self._database

    def conninfo(self, connect_timeout: float = 10) -> dict[str, Any]:
        """PostgreSQL's connection parameters, as the store has them."""
        return {
            "dbname": self.env.get("POSTGRES_DBNAME"),
            "host": self.env.get("POSTGRES_HOST"),
            "port": self.env.get("POSTGRES_PORT"),
            "user": self.env.get("POSTGRES_USER"),
            "password": self.env.get("POSTGRES_PASSWORD") or None,
            "connect_timeout": connect_timeout,
        }

    def read_pool(self) -> ReadPool | None:
        if self.is_postgres:
            return ReadPool.postgresql(self.conninfo())
        path = self.env.get("SQLITE_DBNAME", "")
        if not path or ":memory:" in path or "mode=memory" in path:
            return None  # one database per connection: reads share the store's
        return ReadPool.sqlite(path, timeout=float(self.env.get("SQLITE_LOCK_TIMEOUT", "10")))

    def probe(self, connect_timeout: float) -> None:
        """On PostgreSQL, open a connection of its own (within the timeout): a pool waits
        for its own timeout before giving up on a server that is down. Raises when the
        server does not answer."""
        if self.is_postgres:
            with psycopg.connect(**self.conninfo(connect_timeout)) as conn:
                conn.execute("SELECT 1")

    def ping(self) -> None:
        """One read on the read side's pool (raises when it fails)."""
        self.database().query("SELECT 1 AS ok")

    def close(self) -> None:
        if self._feed is not None:
            self._feed.stop()
        if self._database is not None:
            self._database.close()
        super().close()

    def last_position(self) -> int:
        """The notification log's last position (0 when no event is recorded yet)."""
        return int(self.recorder.max_notification_id() or 0)

    @property
    def is_postgres(self) -> bool:
        return isinstance(self.recorder, PostgresApplicationRecorder)

    def notifications_at(self, positions: list[int]) -> list[Notification]:
        """The stored events at these log positions, in order, as the recorder would give
        them (a practice's events named by an index, read without reading the others)."""
        if not positions:
            return []
        recorder: Any = self.recorder
        if self.is_postgres:
            table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            key, marks = "notification_id", "= ANY(%s)"
            params: list[Any] = [list(positions)]
        else:
            table, key = recorder.events_table_name, "rowid"
            marks, params = f"IN ({', '.join('?' for _ in positions)})", list(positions)
        # the recorder's own table and column names, never a request's text
        sql = (
            f"SELECT {key} AS position, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {table} WHERE {key} {marks} ORDER BY {key}"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [
            Notification(
                id=int(r["position"]),
                originator_id=r["originator_id"]
                if isinstance(r["originator_id"], UUID)
                else recorder.convert_originator_id(r["originator_id"]),
                originator_version=int(r["originator_version"]),
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]

    def notifications_after(
        self, start: int, limit: int, stop: int | None = None
    ) -> list[Notification]:
        """Up to `limit` stored events after position `start` (up to `stop`), in log order."""
        return list(
            self.recorder.select_notifications(
                start=start, limit=limit, stop=stop, inclusive_of_start=False
            )
        )

    def get_many(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Many aggregates read in one query per thousand (a bulk command's patients),
        instead of one query each; an id without events is absent from the answer."""
        wanted = list(dict.fromkeys(ids))
        recorder: Any = self.recorder
        table = recorder.events_table_name
        found: dict[UUID, list[StoredEvent]] = {}
        for start in range(0, len(wanted), 1000):
            part = wanted[start : start + 1000]
            if self.is_postgres:
                schema = recorder.datastore.schema
                sql = (
                    f'{SELECT_MANY} FROM "{schema}"."{table}" '
                    f"WHERE originator_id = ANY(%s) {ORDER_MANY}"
                )
                params: Any = (part,)
            else:
                marks = ",".join("?" * len(part))
                sql = f"{SELECT_MANY} FROM {table} WHERE originator_id IN ({marks}) {ORDER_MANY}"
                params = [i.hex for i in part]
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, params)
                for row in cursor.fetchall():
                    key = UUID(str(row["originator_id"]))
                    found.setdefault(key, []).append(
                        StoredEvent(
                            originator_id=key,
                            originator_version=row["originator_version"],
                            topic=row["topic"],
                            state=bytes(row["state"]),
                        )
                    )
        return {
            key: mutate_all(None, (self.mapper.to_domain_event(e) for e in stored))
            for key, stored in found.items()
        }


@dataclass(frozen=True)
class StoreConfig:
    """Where events live: a PostgreSQL URL, or else a SQLite file."""

    database_url: str | None
    sqlite_path: str

    def environment(self) -> dict[str, str]:
        if not self.database_url:
            return {
                "PERSISTENCE_MODULE": "adapters.persistence:SqliteLedgerFactory",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        url = urlparse(self.database_url)
        if url.scheme not in ("postgres", "postgresql"):
            raise ValueError(
                f"PAYLEDGER_DATABASE_URL must be a postgresql:// URL, got {url.scheme!r}"
            )
        return {
            "PERSISTENCE_MODULE": "adapters.persistence:PostgresLedgerFactory",
            "POSTGRES_DBNAME": (url.path or "/payledger").lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
        }


#: the SQLite files (database, write-ahead log, shared memory) are their owner's only
PRIVATE = 0o600


def make_private(sqlite_path: str) -> None:
    """Create the database file readable by its owner only, or make an existing one so.
    SQLite creates its -wal and -shm files with the database file's permissions."""
    path = Path(sqlite_path)
    if path.parent != Path(""):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE))
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if each.exists():
            each.chmod(PRIVATE)


#: any constant: the key of the PostgreSQL advisory lock held while a process makes the
#: event store's tables (processes starting at once on a new database make them once)
CREATE_LOCK_KEY = 7_242_018


@contextmanager
def creating_alone(database_url: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock (on a connection of its own) while the store makes
    its tables: `CREATE TABLE IF NOT EXISTS` run by two processes at once on a new database
    fails in one of them."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (CREATE_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (CREATE_LOCK_KEY,))


def open_store(config: StoreConfig, **extra_env: Any) -> EventStore:
    if not config.database_url:
        make_private(config.sqlite_path)
    env = config.environment()
    env.update({k: str(v) for k, v in extra_env.items()})
    if config.database_url:
        with creating_alone(config.database_url):
            store = EventStore(env=env)
    else:
        store = EventStore(env=env)
    return store
