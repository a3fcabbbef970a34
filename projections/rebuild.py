"""Rebuilding views in bulk: the live handlers applied in memory, the finished tables
copied into the database at once.

Applying the handlers to the live database costs a round trip per SQL statement (about
ten per event). A rebuild instead applies the very same handlers (`Projection.process`,
no second implementation of any view's rules) to fresh tables in an in-memory SQLite
database (`Scratch`), a page of events per transaction, then `install` replaces the
view's tables in the target with those rows in one transaction: COPY on PostgreSQL,
executemany on SQLite, the indexes created after the rows.

A long log is built by several processes at once (`build`, one per core). Every view's rows
depend on its practice's events alone (`per_practice`), so each process builds every view
for a share of the practices (`build_by_practice`): this process reads the log a page at a
time, deals each record to its practice's share (`Router`) and hands the raw records to
forked workers, each of which decodes its own and applies them to its own in-memory
database, then writes it to a file this process attaches (`Scratch.rows` reads a table's
rows of every share); this process builds its share meanwhile. Where that does not hold
(a view that is not per practice, a cipher or a compressor), each process builds a share
of the views instead (`build_in_parallel`).

`install` takes the views' rows in ``projection_tracking`` first and sets each position
to the one the rows were built to. A runner catching up at the same time (this process
or another) moves its position by compare-and-set before it writes: it waits for the
install, then finds its position moved and reads again, from the installed position.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import sqlite3
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, NamedTuple

import orjson
from eventsourcing.persistence import IntegrityError
from psycopg.rows import tuple_row

from adapters.reads import Reads
from adapters.sql import Database, Tx
from adapters.store import EventStore
from domain.base import PracticeAggregate
from projections.base import Projection
from projections.decode import decode_page, decoder
from projections.feed import PRIVATE_FIELDS
from projections.receivables import SORTABLE

PAGE = 1000
#: the scratch database is private, in memory and thrown away on error: no journal, no sync
PRAGMAS = (
    "PRAGMA journal_mode = OFF",
    "PRAGMA synchronous = OFF",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -262144",  # KiB: 256 MiB of page cache
    "PRAGMA locking_mode = EXCLUSIVE",
)
#: rows written per executemany on SQLite
BATCH = 10_000
#: a log shorter than this is built in this process alone (a worker's start costs more)
PARALLEL_FROM = 20_000
#: the views' relative cost in a build (a profile of 50,230 events); others count 2
COST = {"receivables": 31, "event_feed": 25, "transactions": 23, "ledger_queue": 9, "deposits": 6}

#: (position reached, last position) after each page
Progress = Callable[[int, int], None]


def last_position(store: EventStore) -> int:
    return store.last_position()


class Record(NamedTuple):
    """A stored event at its position, as `Notification` (what the decoders read of it)."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


def select_records(store: EventStore, start: int, stop: int, limit: int = PAGE) -> list[Any]:
    """The stored events after `start` up to `stop` (at most `limit`), in log order: on
    PostgreSQL read as plain rows (the recorder's own query, less its per-row objects)."""
    recorder: Any = store.recorder
    if not store.is_postgres:
        return list(
            recorder.select_notifications(
                start=start, limit=limit, stop=stop, inclusive_of_start=False
            )
        )
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    sql = (
        "SELECT notification_id, originator_id, originator_version, topic, state "  # noqa: S608
        f"FROM {table} WHERE notification_id > %s AND notification_id <= %s "
        "ORDER BY notification_id LIMIT %s"
    )
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(sql, (start, stop, limit), prepare=True)
        rows = cur.fetchall()
    make = Record._make
    return [make(row) if type(row[4]) is bytes else make((*row[:4], bytes(row[4]))) for row in rows]


def pages(store: EventStore, start: int, stop: int) -> Iterable[list[tuple[int, Any]]]:
    """The log's decoded events after `start` up to `stop`, a page at a time."""
    for records in raw_pages(store, start, stop):
        yield decode_page(store.mapper, records)


def raw_pages(store: EventStore, start: int, stop: int) -> Iterable[Sequence[Any]]:
    """The log's stored records after `start` up to `stop`, a page at a time, undecoded."""
    while start < stop:
        records = select_records(store, start, stop)
        if not records:
            return
        yield records
        start = records[-1].id


def is_table(statement: str) -> bool:
    return statement.lstrip().upper().startswith("CREATE TABLE")


#: writes a scratch transaction may hold and send together (they return nothing)
HELD = ("INSERT", "UPDATE", "DELETE")
#: indexes no handler looks up by (they serve the list queries): a build goes without
#: them, and `Scratch.reads` makes them before the first query
DEFERRED_INDEXES = frozenset(
    {
        # one of them serves confirm_snapshots (practice_id, has_balance): the one on a
        # column no handler changes (the money columns change with every movement)
        *(f"ar_by_{c}" for c in SORTABLE if c != "last_name"),
        "ar_by_guarantor",
        "ar_movements_by_payment",
        "transactions_by_date",
        "transactions_by_association",
        "transactions_unsettled",
        "transaction_refunds_unsettled",
        "deposits_by_date",
        "deposits_by_status_date",
        "payment_requests_by_date",
        "event_feed_practice",
        "event_feed_aggregate",
        "users_by_practice",
        "patients_by_practice",
        "ledger_queue_open",
        "open_intents_by_practice",
    }
)
_INDEX_NAME = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)


def deferred(statement: str) -> bool:
    """A statement making an index the build goes without."""
    found = _INDEX_NAME.match(statement.lstrip())
    return found is not None and found.group(1) in DEFERRED_INDEXES


@lru_cache(maxsize=4096)
def holdable(sql: str) -> bool:
    return sql.lstrip()[:6].upper() in HELD and "RETURNING" not in sql.upper()


_WRITTEN = re.compile(r"\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.I)
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=4096)
def words(sql: str) -> frozenset[str]:
    """Every name a statement mentions (a superset of the tables it reads or writes)."""
    return frozenset(word.lower() for word in _WORD.findall(sql))


@lru_cache(maxsize=4096)
def written(sql: str) -> str | None:
    """The table a write statement writes."""
    found = _WRITTEN.match(sql)
    return found.group(1).lower() if found else None


class ScratchTx(Tx):
    """A page's transaction on the scratch database, as `Tx` to the handlers (a read sees
    every write before it, in order; `rowcount` is the last statement's; an integrity
    error is `IntegrityError`), in fewer calls into SQLite: the writes that return
    nothing are held and each run of the same statement sent with one `executemany`
    when a statement that returns something comes, or at the end of the page (as
    `PipelinedTx` does on PostgreSQL). It keeps the page's values (`page_memo`)."""

    def __init__(self, cursor: sqlite3.Cursor, tables: Iterable[str] = ()) -> None:
        super().__init__(cursor, postgres=False)
        self._held: list[tuple[str, Sequence[Any]]] = []
        #: the tables the held writes write
        self._held_tables: set[str] = set()
        #: the scratch's tables: a write that names one besides its own is sent at once
        self._tables = frozenset(t.lower() for t in tables)
        self.memo: dict[Any, Any] = {}

    @property  # type: ignore[override]
    def rowcount(self) -> int:
        self.flush(last_alone=True)
        return self._rowcount

    @rowcount.setter
    def rowcount(self, value: int) -> None:
        self._rowcount = value

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if holdable(sql):
            table = written(sql)
            if table is not None and not (words(sql) & self._tables) - {table}:
                self._held.append((sql, params))
                self._held_tables.add(table)
                return []
            self.flush()  # it reads another table: sent after what is held, at once
        elif self._held and words(sql) & self._held_tables:
            self.flush()  # it reads a table a held write writes
        cursor = self._cursor
        try:
            cursor.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error
        self._rowcount = cursor.rowcount
        description = cursor.description
        if description is None:
            return []
        names = [d[0] for d in description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        super().executemany(sql, rows)

    def flush(self, *, last_alone: bool = False) -> None:
        """Send the held writes, each run of one statement at once (the last alone when
        its own row count is asked for)."""
        held, self._held = self._held, []
        if not held:
            return
        last = held.pop() if last_alone else None
        if len(self._held_tables) > 1:
            # the writes of different tables do not touch each other's rows: each table's
            # in their order, so that longer runs of one statement go at once
            by_table: dict[str | None, list[tuple[str, Sequence[Any]]]] = {}
            for write in held:
                by_table.setdefault(written(write[0]), []).append(write)
            held = [write for writes in by_table.values() for write in writes]
        self._held_tables = set()
        cursor = self._cursor
        try:
            start = 0
            while start < len(held):
                sql = held[start][0]
                end = start + 1
                while end < len(held) and held[end][0] == sql:
                    end += 1
                if end - start == 1:
                    cursor.execute(sql, held[start][1])
                else:
                    cursor.executemany(sql, [params for _, params in held[start:end]])
                self._rowcount = cursor.rowcount
                start = end
            if last is not None:
                cursor.execute(last[0], last[1])
                self._rowcount = cursor.rowcount
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error


class Scratch:
    """A private in-memory SQLite database for fresh copies of views' tables; `db` is the
    same `Database` interface the handlers and the list queries use everywhere."""

    def __init__(self, projections: Sequence[Projection] = ()) -> None:
        self.connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        for pragma in PRAGMAS:
            self.connection.execute(pragma)
        self.db = Database(self, postgres=False)
        self.projections = list(projections)
        self.attached: dict[str, str] = {}
        #: the schemas of the other shares of the practices (`attach_share`)
        self.shares: list[str] = []
        self.folder: TemporaryDirectory[str] | None = None
        #: the index statements the build goes without, made by `indexed`
        self.deferred: list[str] = []
        self.tables = [table for projection in self.projections for table in projection.tables]
        with self.db.transaction() as tx:
            for projection in self.projections:
                for statement in projection.ddl:
                    if deferred(statement):
                        self.deferred.append(statement)
                    else:
                        tx.execute(statement)

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[sqlite3.Cursor]:
        """The datastore side of `Database`: one transaction on the connection."""
        cursor = self.connection.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
        except BaseException:
            self.connection.rollback()
            raise
        if commit:
            self.connection.commit()
        else:
            self.connection.rollback()

    def indexed(self) -> None:
        """Make the indexes the build went without (before the list queries run)."""
        statements, self.deferred = self.deferred, []
        for statement in statements:
            self.connection.execute(statement)

    @property
    def reads(self) -> Reads:
        """The scratch views' queries, as the live views' are run (with every index); of
        this process's rows only (a scratch built by shares is read by `rows`)."""
        self.indexed()
        return Reads(self.db)

    def apply(
        self,
        page: Sequence[tuple[int, Any]],
        until: dict[str, int] | None = None,
        keep: Callable[[Any], bool] | None = None,
    ) -> int:
        """Apply a page of events to every view (each up to its position in `until`, when
        given; only those `keep` accepts, when given) in one transaction; how many events
        were kept."""
        if keep is not None:
            page = [(position, event) for position, event in page if keep(event)]
        # view by view: a view's handlers touch its own tables only (so the views can be
        # built apart, `build`), and a run of the same write goes to SQLite at once
        with self.transaction(commit=True) as cursor:
            tx = ScratchTx(cursor, self.tables)
            for projection in self.projections:
                tx.memo = {}  # a view's own, as each runner's page on PostgreSQL
                process = projection.process
                limit = None if until is None else until[projection.name]
                for position, event in page:
                    if limit is None or position <= limit:
                        process(tx, event, position)
            tx.flush()
        return len(page)

    def attach(self, path: Path, projections: Sequence[Projection]) -> None:
        """Attach a database file holding these views' tables (built by a worker): `rows`
        reads them from there."""
        schema = f"w{len(self.attached)}"
        self.connection.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
        for projection in projections:
            for table in projection.tables:
                self.attached[table] = schema

    def attach_share(self, path: Path) -> None:
        """Attach a database file holding every view's tables for a share of the practices
        (built by a worker, `build_by_practice`): `rows` reads them from there too."""
        schema = f"s{len(self.shares)}"
        self.connection.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
        self.shares.append(schema)

    def rows(self, table: str) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """A table's column names and its rows as plain tuples (of every share), streamed."""
        cursor = self.connection.cursor()
        cursor.row_factory = None
        where = f"{self.attached[table]}.{table}" if table in self.attached else table
        cursor.execute(f"SELECT * FROM {where}")  # noqa: S608 (the projection's own table)
        columns = [c[0] for c in cursor.description]
        if not self.shares:
            return columns, iter(cursor)
        names = ", ".join(columns)
        others = []
        for schema in self.shares:
            other = self.connection.cursor()
            other.row_factory = None
            # the same columns by name, in this table's order
            other.execute(f"SELECT {names} FROM {schema}.{table}")  # noqa: S608
            others.append(other)
        return columns, itertools.chain(cursor, *others)

    def close(self) -> None:
        self.connection.close()
        if self.folder is not None:
            self.folder.cleanup()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build(
    store: EventStore,
    projections: Sequence[Projection],
    stop: int,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Scratch:
    """The views built from the log up to `stop` in a fresh `Scratch` (the caller closes it),
    by `workers` processes (default: one per core for a log of `PARALLEL_FROM` events or
    more, else this one alone)."""
    if workers is None:
        workers = (os.cpu_count() or 1) if stop >= PARALLEL_FROM else 1
    if workers > 1 and by_practice(store, projections):
        return build_by_practice(store, projections, stop, workers, progress)
    shares = split(projections, workers)
    if len(shares) > 1:
        return build_in_parallel(store, shares, stop, progress)
    scratch = Scratch(projections)
    try:
        for page in pages(store, 0, stop):
            scratch.apply(page)
            if progress:
                progress(page[-1][0], stop)
    except BaseException:
        scratch.close()
        raise
    return scratch


def per_practice(projection: Projection) -> bool:
    """Every row of the view depends on the events of one practice only: its handlers are
    the events of the practices' aggregates (each holds its practice) and keep each
    practice's rows apart (no view in `all_projections` keys a row across practices: their
    keys are the aggregates' ids, or made of them, or positions); the event feed, which
    takes every event of a practice's aggregate as it is, says so itself."""
    if getattr(projection, "per_practice", False):
        return True
    handlers = type(projection)._handlers
    return (
        type(projection).process is Projection.process
        and bool(handlers)
        and all(issubclass(cls, PracticeAggregate.Event) for cls in handlers)
    )


def by_practice(store: EventStore, projections: Sequence[Projection]) -> bool:
    """The views can be built a share of the practices at a time: each is `per_practice`
    and the stored events say their practice without decoding (no cipher or compressor)."""
    return decoder(store.mapper).fast and all(per_practice(p) for p in projections)


#: the practices a share takes, relative: this process's share (it also reads the log, sorts
#: its records and hands them out: a seventh of its time at 100,000 events), a worker's
WEIGHTS = (0.8, 1.0)


class Router:
    """Which of `shares` builds a stored event: its practice's (the practices are dealt out
    in the order they first appear, by `WEIGHTS`; an aggregate's events all have its
    practice, read from its first event's JSON)."""

    def __init__(self, mapper: Any, shares: int) -> None:
        self.mapper = mapper
        self.shares = shares
        self.practices: dict[Any, int] = {}
        self.aggregates: dict[Any, int] = {}
        self.dealt = [0] * shares

    def share(self, record: Any) -> int:
        found = self.aggregates.get(record.originator_id)
        if found is not None:
            return found
        practice = self.practice(record)
        share = self.practices.get(practice)
        if share is None:
            # to the share with the fewest practices for its weight (this process's share
            # weighs less: it also reads the log and hands the others theirs)
            share = min(range(self.shares), key=lambda s: (self.dealt[s] + 1) / WEIGHTS[s > 0])
            self.practices[practice] = share
            self.dealt[share] += 1
        self.aggregates[record.originator_id] = share
        return share

    def practice(self, record: Any) -> Any:
        try:
            state = orjson.loads(record.state)
        except orjson.JSONDecodeError:
            state = None
        if type(state) is dict and "practice_id" in state:
            found = state["practice_id"]
            return found if type(found) is str else orjson.dumps(found, option=orjson.OPT_SORT_KEYS)
        event = decode_page(self.mapper, [record])[0][1]  # what orjson does not read
        return str(getattr(event, "practice_id", None))


def build_by_practice(
    store: EventStore,
    projections: Sequence[Projection],
    stop: int,
    workers: int,
    progress: Progress | None,
) -> Scratch:
    """Every view built by `workers` processes, each for its share of the practices
    (`Router`): this one reads the log, hands every other share's records to its forked
    worker through a pipe and builds its own share; the workers' databases are attached
    to this one's `Scratch`, whose `rows` gives every share's rows of a table."""
    context = multiprocessing.get_context("fork")
    scratch = Scratch(projections)
    scratch.folder = TemporaryDirectory(prefix="payledger-build-")
    router = Router(store.mapper, workers)
    pipes = []
    try:
        for number in range(1, workers):
            mine, theirs = context.Pipe()
            path = Path(scratch.folder.name) / f"{number}.sqlite"
            process = context.Process(
                target=work, args=(theirs, store.mapper, projections, path), daemon=True
            )
            process.start()
            theirs.close()
            pipes.append((process, mine, path))
        share = router.share
        for records in raw_pages(store, 0, stop):
            parts: list[list[Any]] = [[] for _ in range(workers)]
            for record in records:
                parts[share(record)].append(record)
            for (_, pipe, _), part in zip(pipes, parts[1:], strict=True):
                if part:
                    hand(pipe, projections, part)
            if parts[0]:
                scratch.apply(decode_page(store.mapper, parts[0]))
            if progress:
                progress(records[-1].id, stop)
        for process, pipe, path in pipes:
            hand(pipe, projections, None)
            answer(pipe, projections)
            process.join()
            scratch.attach_share(path)
    except BaseException:
        scratch.close()
        raise
    finally:
        for process, pipe, _ in pipes:
            pipe.close()
            if process.is_alive():
                process.kill()
            process.join()
    return scratch


def split(projections: Sequence[Projection], workers: int) -> list[list[Projection]]:
    """The views in at most `workers` shares of about equal cost (the costliest first, each
    to the cheapest share so far)."""
    shares: list[list[Projection]] = [[] for _ in range(max(1, min(workers, len(projections))))]
    costs = [0] * len(shares)
    for projection in sorted(projections, key=lambda p: -COST.get(p.name, 2)):
        cheapest = costs.index(min(costs))
        shares[cheapest].append(projection)
        costs[cheapest] += COST.get(projection.name, 2)
    return [share for share in shares if share]


def build_in_parallel(
    store: EventStore,
    shares: list[list[Projection]],
    stop: int,
    progress: Progress | None,
) -> Scratch:
    """The first share built here, every other one by a forked worker fed the raw records
    through a pipe; the workers' databases attached to this one's `Scratch`."""
    context = multiprocessing.get_context("fork")
    scratch = Scratch(shares[0])
    scratch.folder = TemporaryDirectory(prefix="payledger-build-")
    workers = []
    try:
        for number, share in enumerate(shares[1:]):
            mine, theirs = context.Pipe()
            path = Path(scratch.folder.name) / f"{number}.sqlite"
            process = context.Process(
                target=work, args=(theirs, store.mapper, share, path), daemon=True
            )
            process.start()
            theirs.close()
            workers.append((process, mine, path, share))
        for records in raw_pages(store, 0, stop):
            for _, pipe, _, share in workers:
                hand(pipe, share, records)  # a worker takes it when done with the one before
            scratch.apply(decode_page(store.mapper, records))
            if progress:
                progress(records[-1].id, stop)
        for process, pipe, path, share in workers:
            hand(pipe, share, None)
            answer(pipe, share)
            process.join()
            scratch.attach(path, share)
    except BaseException:
        scratch.close()
        raise
    finally:
        for process, pipe, _, _ in workers:
            pipe.close()
            if process.is_alive():
                process.kill()
            process.join()
    return scratch


def hand(pipe: Connection, share: Sequence[Projection], records: Any) -> None:
    """Send a worker a page of records (None: the end); a worker that stopped says why."""
    try:
        pipe.send(records)
    except OSError:  # it stopped early: its answer is the error
        answer(pipe, share)
        raise


def answer(pipe: Connection, share: Sequence[Projection]) -> None:
    """A worker's answer: None when its views are built, else the error it met."""
    try:
        error = pipe.recv()
    except EOFError:
        error = "the worker ended without an answer"
    if error is not None:
        raise RuntimeError(f"building {[p.name for p in share]} failed:\n{error}")


def work(pipe: Connection, mapper: Any, projections: Sequence[Projection], path: Path) -> None:
    """A worker: apply the pages of records it is sent to its views until it is sent None,
    then write its database to `path`; answer None, or the error."""
    try:
        with Scratch(projections) as scratch:
            while (records := pipe.recv()) is not None:
                scratch.apply(decode_page(mapper, records))
            target = sqlite3.connect(path)
            scratch.connection.backup(target)
            target.close()
        pipe.send(None)
    except BaseException:
        pipe.send(traceback.format_exc())
    finally:
        pipe.close()


#: the checksums of the views `install` put in place, by database (its datastore): each
#: view's (position, the tracking row's version) when installed, and its summary
INSTALLED: weakref.WeakKeyDictionary[Any, dict[str, tuple[tuple[int, str], dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def stamps(tx: Tx) -> dict[str, tuple[int, str]]:
    """PostgreSQL: each view's position and the version of its tracking row (`xmin`: the
    transaction that wrote it last; every write to a view moves its row)."""
    rows = tx.execute("SELECT name, position, xmin::text AS stamp FROM projection_tracking")
    return {str(r["name"]): (int(r["position"]), str(r["stamp"])) for r in rows}


def installed_checksums(
    db: Database, projections: Sequence[Projection]
) -> dict[str, dict[str, Any]] | None:
    """The checksums `install` computed from the rows it copied into `db` (PostgreSQL),
    when no view moved since (its tracking row unchanged), each given once; else None."""
    if not db.postgres:
        return None
    kept = INSTALLED.get(getattr(db, "_datastore", db))
    if not kept or any(p.name not in kept for p in projections):
        return None
    with db.reading() as tx:
        now = stamps(tx)
    if any(now.get(p.name) != kept[p.name][0] for p in projections):
        return None
    return {p.name: {**kept.pop(p.name)[1], "position": now[p.name][0]} for p in projections}


def row_line(columns: Sequence[str]) -> Callable[[tuple[Any, ...]], str]:
    """A scratch row (a tuple of `columns`) as `replay.row_text` puts it (canonical JSON),
    by orjson where every value is text, an integer or NULL (the same text: the scratch
    has no other values but for a rare one, which goes to `row_text`)."""
    from projections.replay import row_text  # replay builds on this module

    names = list(columns)
    plain = (str, int, type(None))
    dumps = orjson.dumps
    option = orjson.OPT_SORT_KEYS
    private = [c for c in columns if c in PRIVATE_FIELDS]

    def line(row: tuple[Any, ...]) -> str:
        values = dict(zip(names, row, strict=True))
        for name in private:
            del values[name]
        for value in row:
            if type(value) not in plain:
                return row_text(values)
        try:
            return dumps(values, option=option).decode()
        except TypeError:  # an integer beyond 64 bits
            return row_text(values)

    return line


def noted(
    columns: Sequence[str], rows: Iterator[tuple[Any, ...]], lines: list[str]
) -> Iterator[tuple[Any, ...]]:
    """The rows, each also put in `lines` as its checksum's line."""
    line = row_line(columns)
    append = lines.append
    for row in rows:
        append(line(row))
        yield row


def install(
    db: Database,
    scratch: Scratch,
    projections: Sequence[Projection],
    position: int,
    schemas: dict[str, str],
) -> None:
    """Replace the views' tables in `db` by the rows built in `scratch` and set their
    tracking positions to `position`, in one transaction. On PostgreSQL each view's
    checksum is computed from the rows as they are copied (`installed_checksums`: the
    checksum the live tables give, without reading them back)."""
    from projections.replay import ViewRows, summary  # replay builds on this module

    checksums: dict[str, dict[str, Any]] = {}
    with db.transaction() as tx:
        for projection in projections:
            # the tracking row first: a runner's compare-and-set waits for this transaction
            tx.execute(
                "INSERT INTO projection_tracking (name, position, schema) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "schema = excluded.schema",
                (projection.name, position, schemas[projection.name]),
            )
        for projection in projections:
            for table in projection.tables:
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in projection.ddl:
                if is_table(statement):
                    tx.execute(statement)
            lines: dict[str, list[str]] = {}
            for table in projection.tables:
                columns, rows = scratch.rows(table)
                if db.postgres:
                    rows = noted(columns, rows, lines.setdefault(table, []))
                copy_rows(tx, db.postgres, table, columns, rows)
            if db.postgres:
                for table_lines in lines.values():
                    table_lines.sort()
                checksums[projection.name] = summary(ViewRows(projection.name, lines))
                del lines
            for statement in projection.ddl:
                if not is_table(statement):
                    tx.execute(statement)
            if db.postgres:  # the planner's statistics, before the first query plans with none
                for table in projection.tables:
                    tx.execute(f"ANALYZE {table}")
        if db.postgres:
            now = stamps(tx)
            installed = {name: (now[name], checksums[name]) for name in checksums}
    if db.postgres:
        key = getattr(db, "_datastore", db)
        INSTALLED.setdefault(key, {}).update(installed)


def copy_rows(
    tx: Tx, postgres: bool, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    """Bulk-load rows into a table: COPY on PostgreSQL, executemany in batches on SQLite."""
    names = ", ".join(columns)
    if postgres:
        tx.copy_in(f"COPY {table} ({names}) FROM STDIN", rows)
        return
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            tx.executemany(sql, batch)
            batch = []
    if batch:
        tx.executemany(sql, batch)
