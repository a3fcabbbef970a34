"""The read side's row types (the TypedDicts beside the queries of projections/ and of the
durable tables' adapters) against their tables, on an in-memory SQLite database made by
the projections' own DDL and the migrations.

Two ways a row type drifts from its table, each caught here: a column added, dropped or
retyped in the table but not in the type (``test_row_type_matches_its_table``: a row type
that is a whole table has every column, each key is a column of the Python type the
column stores, optional exactly when the column is nullable); and a query that returns
other keys than its type declares (``test_query_returns_its_row_type``: each query, run
on the tables with a row in them, returns dicts whose keys are its type's and whose
values are of its type's types)."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID

import pytest

from adapters.accounts import Accounts, LoginRow, WebSessionRow
from adapters.due_work import DueWorkRow
from adapters.idempotency_keys import KeptKey
from adapters.messaging.email import MailboxRow, list_sandbox_mailbox
from adapters.migrations import migrate
from adapters.pms.journal import (
    Journal,
    JournalEntryRow,
    JournalIntake,
    WritebackPatientRow,
    WritebackPracticeRow,
    WritebackStatus,
)
from adapters.sql import Database
from adapters.store import StoreConfig, open_store
from adapters.stripe_events import ReceivedEvent
from projections import deposits, directory, feed, ledger_queue, receivables, requests, users
from projections import transactions as txns

P = UUID(int=1)  # the practice
DAY = "2026-03-10"
AT = "2026-03-10T15:00:00.000000Z"
LATER = "2099-01-01T00:00:00.000000Z"
ID = str(UUID(int=2))  # each table's row

#: row types that are whole rows of a table: every column, no more
WHOLE: dict[type, str] = {
    txns.TransactionRow: "transactions",
    txns.RefundRow: "transaction_refunds",
    deposits.DepositRow: "deposits",
    deposits.DepositItemRow: "deposit_items",
    requests.PaymentRequestRow: "payment_requests",
    receivables.ArRow: "ar_patients",
    receivables.ArFilterRow: "ar_filters",
    receivables.ArSyncRow: "ar_syncs",
    directory.PatientRow: "patients",
    ledger_queue.LedgerQueueRow: "ledger_queue",
    JournalEntryRow: "writeback_journal",
    WritebackStatus: "writeback_status",
    WritebackPracticeRow: "writeback_practices",
    WritebackPatientRow: "writeback_patients",
    LoginRow: "user_logins",
    WebSessionRow: "web_sessions",
}
#: row types of some columns (of the first of the tables that has each)
PART: dict[type, tuple[str, ...]] = {
    txns.DueSettlementRow: ("transactions",),
    txns.UnsettledRefundRow: ("transaction_refunds",),
    txns.PaymentIdRow: ("transactions",),
    txns.LostDisputeRow: ("event_feed", "transactions"),
    deposits.DueDepositRow: ("deposits",),
    feed.FeedRow: ("event_feed",),
    users.UserRow: ("users",),
    users.UserNameRow: ("users",),
    MailboxRow: ("mailbox",),
}
#: rows read into dataclasses (their fields are columns; the dataclass converts the types)
DATACLASSES: dict[type, str] = {
    KeptKey: "idempotency_keys",
    DueWorkRow: "due_work_status",
    ReceivedEvent: "stripe_events",
}
#: nullable columns that the query's WHERE clause leaves never NULL (the type says why)
NEVER_NULL_THERE = {
    (txns.DueSettlementRow, "batch_date"),
    (txns.LostDisputeRow, "dispute_id"),
    (txns.LostDisputeRow, "dispute_amount"),
}
PYTHON_TYPE = {"TEXT": str, "INTEGER": int, "BIGINT": int, "DOUBLE PRECISION": float}


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Every projection's tables and every durable table (made by the migrations, as at
    start-up), empty, in an SQLite file of their own."""
    projections = [
        txns.Transactions(),
        deposits.Deposits(),
        requests.PaymentRequests(),
        receivables.Receivables(),
        feed.EventFeed(),
        directory.Directory(),
        ledger_queue.LedgerQueue(),
        users.Users(),
    ]
    store = open_store(StoreConfig(None, str(tmp_path_factory.mktemp("rows") / "rows.sqlite3")))
    migrate(store)
    db = store.database()
    with db.transaction() as tx:
        for projection in projections:
            for statement in projection.ddl:
                tx.execute(statement)
    yield db
    store.close()


def columns(db: Database, table: str) -> dict[str, tuple[str, bool]]:
    """The table's columns: each one's SQL type (upper case) and whether it is nullable."""
    with db.reading() as tx:
        if db.postgres:
            rows = tx.execute(
                "SELECT column_name AS name, data_type AS type, is_nullable = 'YES' AS nullable "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
        else:
            rows = [
                {**r, "nullable": not r["notnull"] and not r["pk"]}
                for r in tx.execute(f"PRAGMA table_info({table})")
            ]
    assert rows, f"no table {table}"
    return {str(r["name"]): (str(r["type"]).upper(), bool(r["nullable"])) for r in rows}


def hints(kind: type) -> dict[str, Any]:
    if dataclasses.is_dataclass(kind):
        return {f.name: f.type for f in dataclasses.fields(kind)}
    return get_type_hints(kind)


def split(hint: Any) -> tuple[tuple[type, ...], bool]:
    """The classes a value of the hint may be, and whether it may be None."""
    members = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    kinds = tuple(object if m is Any else get_origin(m) or m for m in members)
    return tuple(k for k in kinds if k is not type(None)), type(None) in kinds


def check_columns(db: Database, kind: type, tables: tuple[str, ...]) -> list[str]:
    """What is wrong with the row type's keys as columns of the tables."""
    found = {t: columns(db, t) for t in tables}
    wrong = []
    for key, hint in hints(kind).items():
        column = next((found[t][key] for t in tables if key in found[t]), None)
        if column is None:
            wrong.append(f"{key}: no such column in {', '.join(tables)}")
            continue
        classes, optional = split(hint)
        sql_type, nullable = column
        stored = PYTHON_TYPE[sql_type]
        if classes != (stored,):
            wrong.append(f"{key}: {hint} but the column stores {stored.__name__}")
        if optional != nullable and (kind, key) not in NEVER_NULL_THERE:
            wrong.append(f"{key}: {hint} but the column is {'' if nullable else 'not '}nullable")
    return wrong


@pytest.mark.parametrize("kind", [*WHOLE, *PART], ids=lambda k: k.__name__)
def test_row_type_matches_its_table(empty: Database, kind: type) -> None:
    tables = (WHOLE[kind],) if kind in WHOLE else PART[kind]
    assert check_columns(empty, kind, tables) == []
    if kind in WHOLE:
        missing = set(columns(empty, WHOLE[kind])) - set(hints(kind))
        assert not missing, f"{kind.__name__} lacks columns of {WHOLE[kind]}: {sorted(missing)}"


@pytest.mark.parametrize("kind", list(DATACLASSES), ids=lambda k: k.__name__)
def test_dataclass_rows_are_columns(empty: Database, kind: type) -> None:
    assert set(hints(kind)) <= set(columns(empty, DATACLASSES[kind]))


def test_the_check_finds_drift(empty: Database) -> None:
    """The checks fail when a type and its table differ (so the tests above can fail)."""
    from typing import TypedDict

    class Drifted(TypedDict):
        id: str
        amount: str  # BIGINT in the table
        settled_at: str  # nullable in the table
        tip: int  # no such column

    assert len(check_columns(empty, Drifted, ("transactions",))) == 3


# -- the queries, on a database with rows --------------------------------------------------


def filled(db: Database, table: str, **values: Any) -> dict[str, Any]:
    """A row for the table: every column given a value of its type (``values`` first)."""
    row: dict[str, Any] = {}
    for name, (sql_type, _) in columns(db, table).items():
        stored = PYTHON_TYPE[sql_type]
        row[name] = values.pop(name) if name in values else stored(1) if stored is not str else name
    assert not values, f"not columns of {table}: {sorted(values)}"
    return row


def insert(db: Database, table: str, **values: Any) -> None:
    row = filled(db, table, **values)
    with db.transaction() as tx:
        tx.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )


@pytest.fixture(scope="module")
def db(empty: Database) -> Database:
    fill(empty)
    return empty


def fill(empty: Database) -> None:
    """One row (two in ``transactions``) in each table the queries read, each as the
    queries below ask for it."""
    at = {"practice_id": str(P)}
    insert(
        empty,
        "transactions",
        id=ID,
        **at,
        local_date=DAY,
        occurred_at=AT,
        status="approved",
        settles_at=AT,
        refunded_amount=0,
        association="unassociated",
        transaction_id="pi_1",
        unposted="[]",
    )
    insert(
        empty,
        "transactions",
        id=str(UUID(int=3)),
        **at,
        local_date=DAY,
        occurred_at=AT,
        status="settled",
        refunded_amount=0,
        dispute_status="lost",
        unposted="[]",
    )
    insert(empty, "transaction_refunds", id=ID, **at, local_date=DAY, occurred_at=AT, batch_id=None)
    insert(
        empty,
        "event_feed",
        **at,
        aggregate_id=str(UUID(int=3)),
        type="PaymentDisputeClosed",
        occurred_at=AT,
        actor=f"user:{ID}",
        data="{}",
    )
    insert(
        empty,
        "deposits",
        id=ID,
        **at,
        deposit_date=DAY,
        batch_date=DAY,
        status="scheduled",
        payout_differences="[]",
    )
    insert(empty, "deposit_items", deposit_id=ID)
    insert(empty, "payment_requests", id=ID, **at, requested_date=DAY, token_hash="hash")
    insert(empty, "ar_patients", id=ID, **at, has_balance=1, is_guarantor=1, snooze_until=None)
    insert(empty, "ar_filters", id=ID, **at, deleted=0, filter="{}")
    insert(empty, "ar_syncs", **at)
    insert(empty, "patients", id=ID, **at)
    insert(empty, "ledger_queue", id=ID, **at, status="open")
    insert(empty, "users", id=ID, **at)
    insert(
        empty,
        "writeback_journal",
        id=ID,
        **at,
        payment_id=ID,
        kind="payment",
        status="pending",
        next_attempt_at=AT,
        claimed_until=None,
    )
    insert(empty, "writeback_status", **at)
    insert(empty, "writeback_practices", **at)
    insert(empty, "writeback_patients", id=ID, **at)
    insert(empty, "user_logins", email="a@example.com", user_id=ID, **at)
    insert(
        empty,
        "web_sessions",
        token_hash="hash",
        user_id=ID,
        **at,
        expires_at=LATER,
        signed_out_at=None,
    )
    insert(empty, "mailbox", **at)


def journal_intake(db: Database, read: Callable[[JournalIntake], Any]) -> Any:
    with db.transaction() as tx:
        return read(JournalIntake(tx))


def deposit_row(db: Database) -> deposits.DepositRow:
    row = deposits.get_deposit(db, P, UUID(ID))
    assert row is not None
    return {**row, "payout_id": "po_1"}


AR = receivables.ArQuery()
JOURNAL: Callable[[Database], Journal] = Journal
PERIOD = {"date_from": DAY, "date_to": DAY, "after": None, "limit": 10}
#: (name, the query on the database, its row type)
QUERIES: list[tuple[str, Callable[[Database], Any], type]] = [
    (
        "list_transactions",
        lambda db: txns.list_transactions(
            db, P, **PERIOD, association=None, patient_id=None, status=None
        ),
        txns.TransactionRow,
    ),
    ("payments_of_day", lambda db: txns.payments_of_day(db, P, DAY), txns.TransactionRow),
    ("refunds_of_day", lambda db: txns.refunds_of_day(db, P, DAY), txns.RefundRow),
    (
        "due_for_settlement",
        lambda db: txns.due_for_settlement(db, P, LATER),
        txns.DueSettlementRow,
    ),
    ("unsettled_refunds", lambda db: txns.unsettled_refunds(db, P), txns.UnsettledRefundRow),
    (
        "settled_unrefunded",
        lambda db: txns.settled_unrefunded(db, P, limit=10),
        txns.PaymentIdRow,
    ),
    ("disputes_lost", lambda db: txns.disputes_lost(db, P), txns.LostDisputeRow),
    (
        "unassociated_summary",
        lambda db: [txns.unassociated_summary(db, P)],
        txns.UnassociatedSummary,
    ),
    ("list_deposits", lambda db: deposits.list_deposits(db, P, **PERIOD), deposits.DepositRow),
    ("get_deposit", lambda db: [deposits.get_deposit(db, P, UUID(ID))], deposits.DepositRow),
    (
        "deposits_of_batch_date",
        lambda db: deposits.deposits_of_batch_date(db, P, DAY),
        deposits.DepositRow,
    ),
    ("deposit_items", lambda db: deposits.deposit_items(db, UUID(ID)), deposits.DepositItemRow),
    (
        "due_deposits",
        lambda db: deposits.due_deposits(db, P, datetime(2099, 1, 1, tzinfo=UTC).date()),
        deposits.DueDepositRow,
    ),
    ("payout_of", lambda db: [deposits.payout_of(deposit_row(db))], deposits.Payout),
    (
        "list_requests",
        lambda db: requests.list_requests(db, P, **PERIOD, status=None, patient_id=None),
        requests.PaymentRequestRow,
    ),
    (
        "request_by_token_hash",
        lambda db: [requests.request_by_token_hash(db, "hash")],
        requests.PaymentRequestRow,
    ),
    (
        "list_ar",
        lambda db: receivables.list_ar(
            db, P, AR, today=DAY, sort="last_name", after=None, limit=None
        ),
        receivables.ArRow,
    ),
    ("list_filters", lambda db: receivables.list_filters(db, P), receivables.ArFilterRow),
    (
        "get_filter",
        lambda db: [receivables.get_filter(db, P, UUID(ID))],
        receivables.ArFilterRow,
    ),
    ("last_sync", lambda db: [receivables.last_sync(db, P)], receivables.ArSyncRow),
    ("read_feed", lambda db: feed.read_feed(db, P, 0, 10), feed.FeedItem),
    (
        "read_history",
        lambda db: feed.read_history(db, P, UUID(int=3), 0, 10),
        feed.FeedItem,
    ),
    (
        "with_actor_names",
        lambda db: users.with_actor_names(db, P, feed.read_feed(db, P, 0, 10)),
        users.NamedFeedItem,
    ),
    ("list_patients", lambda db: directory.list_patients(db, P, None, 10), directory.PatientRow),
    (
        "open_items",
        lambda db: ledger_queue.open_items(db, P, None, 10),
        ledger_queue.LedgerQueueRow,
    ),
    ("list_users", lambda db: users.list_users(db, P), users.UserRow),
    ("journal.due", lambda db: JOURNAL(db).due(None), JournalEntryRow),
    ("journal.get", lambda db: [JOURNAL(db).get(ID)], JournalEntryRow),
    ("journal.of_payment", lambda db: JOURNAL(db).of_payment(ID), JournalEntryRow),
    ("journal.status", lambda db: [JOURNAL(db).status(str(P))], WritebackStatus),
    (
        "intake.practice",
        lambda db: [journal_intake(db, lambda i: i.practice(str(P)))],
        WritebackPracticeRow,
    ),
    (
        "intake.patient",
        lambda db: [journal_intake(db, lambda i: i.patient(ID))],
        WritebackPatientRow,
    ),
    (
        "intake.payment_entry",
        lambda db: [journal_intake(db, lambda i: i.payment_entry(ID))],
        JournalEntryRow,
    ),
    ("accounts.login", lambda db: [Accounts(db).login("a@example.com")], LoginRow),
    ("accounts.login_of", lambda db: [Accounts(db).login_of(UUID(ID))], LoginRow),
    (
        "accounts.live_session",
        lambda db: [Accounts(db).live_session("hash", datetime(2030, 1, 1, tzinfo=UTC))],
        WebSessionRow,
    ),
    ("list_sandbox_mailbox", lambda db: list_sandbox_mailbox(db, P), MailboxRow),
]


def conforms(row: Mapping[str, Any], kind: type) -> list[str]:
    """What in the row is not as its type says (keys, and each value's class)."""
    declared = hints(kind)
    required: frozenset[str] = getattr(kind, "__required_keys__", frozenset(declared))
    wrong = [f"{k}: not in {kind.__name__}" for k in row if k not in declared]
    wrong += [f"{k}: missing" for k in required if k not in row]
    for key, value in row.items():
        if key in declared:
            classes, optional = split(declared[key])
            if not (value is None and optional) and not isinstance(value, classes):
                wrong.append(f"{key}: {value!r} is not {declared[key]}")
    return wrong


def wrong_rows(db: Database, query: Callable[[Database], Any], kind: type) -> list[str]:
    """What in the query's rows is not as its row type says (none found is wrong too)."""
    rows = query(db)
    if not rows or any(r is None for r in rows):
        return ["the query found no row"]
    return [problem for row in rows for problem in conforms(row, kind)]


@pytest.mark.parametrize(
    ("query", "kind"), [(q, k) for _, q, k in QUERIES], ids=[n for n, _, _ in QUERIES]
)
def test_query_returns_its_row_type(
    db: Database, query: Callable[[Database], Any], kind: type
) -> None:
    assert wrong_rows(db, query, kind) == []


def test_a_practice_without_a_writeback_status_has_none(db: Database) -> None:
    assert JOURNAL(db).status(str(UUID(int=9))) == {}
