"""kill -9 while group commits carry the views inline (adapters/persistence.py: the views
at the head are applied in the transaction of their events).

1. One API process (its own runners in a thread beside it): 8 clients pay at once, the
   process is killed among them, restarted, and the commands whose answer was lost are
   retried with their keys.
2. As compose.yaml deploys it: two API processes with PAYLEDGER_RUN_VIEWS=0 (they apply
   their commands' events inline, and wait for the positions the runners commit) and
   ``payledger projections run`` in a process of its own; 8 clients split across the two
   APIs; one API is killed mid-load, the other goes on and takes the retries.

Then, in both: every acknowledged (or retried) payment is stored once, its
Idempotency-Key answered once (idempotency_keys), and its view rows are there exactly
once: its row in transactions and in deposit_sources, one event_feed row per event of
the payment (at that event's position), its charge intent cleared from open_intents;
no other payment appears; every view's position (projection_tracking) equals the last
notification id, with no error, and the views' rows are those a replay of the log gives
(``projections.replay.verify``: the live rows against the log replayed in memory).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from adapters.store import StoreConfig, open_store
from projections import replay
from projections.catalog import all_projections
from tests.reliability.cluster import Service
from tests.reliability.conftest import Server, set_up

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
CLIENTS = 8
EVENTS = "payledger_events"


def body_for(amount: int) -> dict[str, Any]:
    return {"method": "virtual_terminal", "amount": amount, "card": CARD}


@dataclass
class Load:
    """Clients paying with keys: what was acknowledged, and what lost its answer."""

    admin: dict[str, str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (amount, id)
    by_base: dict[str, int] = field(default_factory=dict)  # base URL -> acknowledged there
    unanswered: dict[str, int] = field(default_factory=dict)  # key -> amount
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    amounts: Any = field(default_factory=lambda: iter(range(1000, 1_000_000)))
    threads: list[threading.Thread] = field(default_factory=list)

    def client(self, base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not self.stop.is_set():
                with self.lock:
                    amount = next(self.amounts)
                key = str(uuid.uuid4())
                headers = {**self.admin, "Idempotency-Key": key}
                try:
                    answer = http.post("/v1/payments", json=body_for(amount), headers=headers)
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered[key] = amount
                    return
                with self.lock:
                    if answer.status_code != 201:
                        self.failures.append(f"{answer.status_code} {answer.text}")
                        return
                    self.acknowledged[key] = (amount, answer.json()["id"])
                    self.by_base[base] = self.by_base.get(base, 0) + 1

    def start(self, bases: list[str]) -> None:
        for n in range(CLIENTS):
            thread = threading.Thread(target=self.client, args=(bases[n % len(bases)],))
            self.threads.append(thread)
            thread.start()

    def wait_until(self, enough: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not enough():
            assert not self.failures, self.failures[:3]
            assert time.monotonic() < deadline, "the clients should have been paying"
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        assert not self.failures, self.failures[:3]
        assert self.unanswered, "the process should have died with commands in flight"

    def retry_unanswered(self, base: str) -> dict[str, tuple[int, str]]:
        """Each command whose answer was lost, sent again with its key: finished once."""
        finished: dict[str, tuple[int, str]] = {}
        with httpx.Client(base_url=base, timeout=30) as http:
            for key, amount in self.unanswered.items():
                retried = http.post(
                    "/v1/payments",
                    json=body_for(amount),
                    headers={**self.admin, "Idempotency-Key": key},
                )
                assert retried.status_code in (200, 201), retried.text
                assert retried.json()["status"] == "approved"
                finished[key] = (amount, retried.json()["id"])
        return finished


def rows(url: str, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(sql, params).fetchall())


def wait_views_at_head(url: str, seconds: float = 30) -> int:
    """Until every view's position is the last notification id (the restarted server's or
    the runners' process catching up whatever is behind); that id."""
    deadline = time.monotonic() + seconds
    while True:
        head = int(
            rows(url, f"SELECT COALESCE(MAX(notification_id), 0) AS n FROM {EVENTS}")[0]["n"]
        )
        tracked = rows(url, "SELECT name, position, error FROM projection_tracking")
        if all(int(r["position"]) == head for r in tracked):
            return head
        assert time.monotonic() < deadline, (head, tracked)
        time.sleep(0.1)


def check_invariants(url: str, tmp_path: Path, keys: dict[str, tuple[int, str]]) -> None:
    """Every payment once, with its key answered once and its view rows exactly once; the
    views at the head, without error, with the rows a replay of the log gives."""
    expected = {pid: amount for amount, pid in keys.values()}
    assert len(expected) == len(keys), "two commands, one payment"
    head = wait_views_at_head(url)

    # the payments and their events: each stored once
    captured = rows(
        url,
        f"SELECT originator_id::text AS id, COUNT(*) AS n FROM {EVENTS} "
        "WHERE topic LIKE %s GROUP BY originator_id",
        ("domain.payments:Payment.Captured",),
    )
    assert {r["id"]: int(r["n"]) for r in captured} == dict.fromkeys(expected, 1)

    # the idempotency record of each key: one, answered, naming its payment
    records = rows(
        url,
        "SELECT key, status_code, body FROM idempotency_keys WHERE key = ANY(%s)",
        (list(keys),),
    )
    assert sorted(r["key"] for r in records) == sorted(keys)
    for record in records:
        assert record["status_code"] in (200, 201), record
        assert keys[record["key"]][1] in (record["body"] or ""), record

    # the views: each payment's rows exactly once
    listed = rows(url, "SELECT id, amount FROM transactions")
    assert sorted((r["id"], int(r["amount"])) for r in listed) == sorted(expected.items())
    sources = rows(url, "SELECT id FROM deposit_sources")
    assert sorted(r["id"] for r in sources) == sorted(expected)
    left_open = rows(
        url, "SELECT id, payment_id FROM open_intents WHERE payment_id = ANY(%s)", (list(expected),)
    )
    assert left_open == []
    feed = rows(
        url,
        "SELECT aggregate_id, position FROM event_feed WHERE aggregate_id = ANY(%s)",
        (list(expected),),
    )
    stored = rows(
        url,
        f"SELECT originator_id::text AS id, notification_id FROM {EVENTS} "
        "WHERE originator_id::text = ANY(%s)",
        (list(expected),),
    )
    assert sorted((r["aggregate_id"], int(r["position"])) for r in feed) == sorted(
        (r["id"], int(r["notification_id"])) for r in stored
    )

    # no view ahead of or behind its events, none failing
    tracked = rows(url, "SELECT name, position, error FROM projection_tracking")
    names = {p.name for p in all_projections()}
    assert names <= {r["name"] for r in tracked}
    assert [r for r in tracked if int(r["position"]) != head or r["error"]] == []

    # and their rows are what the log replayed gives
    store = open_store(StoreConfig(url, str(tmp_path / "unused.db")))
    try:
        verified = replay.verify(store, store.database(), all_projections())
    finally:
        store.close()
    assert verified.differences == [], verified.differences[:5]
    assert {v["position"] for v in verified.live.values()} == {head}


def test_kill_nine_during_group_commits_with_inline_views(
    private_url: str, server_for: Callable[..., Server], tmp_path: Path
) -> None:
    server = server_for(private_url).start()
    admin, _ = set_up(server.base)
    load = Load(admin)
    load.start([server.base])
    load.wait_until(lambda: len(load.acknowledged) >= 80)
    server.service.kill9()  # in the middle of the clients' saves (and their views)
    load.finish()

    server.start()
    finished = load.retry_unanswered(server.base)
    check_invariants(private_url, tmp_path, {**load.acknowledged, **finished})


def test_kill_nine_of_one_api_beside_another_and_the_runners_process(
    private_url: str, server_for: Callable[..., Server], tmp_path: Path
) -> None:
    apis = [server_for(private_url), server_for(private_url)]
    for api in apis:
        api.service.env = {**api.service.env, "PAYLEDGER_RUN_VIEWS": "0"}
    apis[0].start()
    apis[1].start()
    log = tmp_path / "projections.log"
    runners = Service(
        "views", ["projections", "run", "--interval", "0.2"], apis[0].service.env, log
    )
    runners.start()
    try:
        deadline = time.monotonic() + 60
        while "projections: running" not in (log.read_text() if log.exists() else ""):
            assert runners.alive(), log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the runners' process should have started"
            time.sleep(0.05)
        admin, _ = set_up(apis[0].base)
        load = Load(admin)
        load.start([api.base for api in apis])  # 4 clients on each
        load.wait_until(lambda: all(load.by_base.get(a.base, 0) >= 40 for a in apis))
        apis[0].service.kill9()  # one API process dies with commands in flight
        survivors = load.by_base[apis[1].base]
        load.wait_until(lambda: load.by_base[apis[1].base] >= survivors + 40)  # the other goes on
        load.finish()
        assert runners.alive(), "the runners' process should have gone on"

        finished = load.retry_unanswered(apis[1].base)
        check_invariants(private_url, tmp_path, {**load.acknowledged, **finished})
    finally:
        runners.stop()
