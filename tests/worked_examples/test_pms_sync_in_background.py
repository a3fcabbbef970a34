"""Worked example: the PMS sync runs in the background, in pages and in parallel.

Elm Dental reads 260 families (and a few family members) from Open Dental, which answers
every call 30 ms late: one call after another that is some 8 s; eight calls at a time it
is about one second. Pressing "Sync" (POST /v1/pms/sync) answers at once (202) and the
sync's progress moves while it reads; a second press answers the running sync's status.
What it records is what the sequential sync recorded (the same events, patient by
patient). When Open Dental fails in the middle, the sync ends failed and what it read
is kept; the next sync completes. A throttling Open Dental (429) is waited out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.pms.addresses import AllowedHosts
from adapters.pms.opendental import OpenDental, OpenDentalSettings
from domain.patients import Patient
from domain.receivables import PmsSync, sync_id_for
from projections.receivables import ArQuery, list_ar
from services.app.practices import patient_id_for, register_patient
from services.app.receivables import SYNCS, SyncResult, finish_sync, start_sync
from services.context import Components
from tests.conftest import Api, PinnedClock
from tests.e2e.test_html_pages import browser
from tests.fakes.opendental import FakeOpenDental, Served
from tests.pms_syncs import ended

#: the fakes are served on 127.0.0.1, which PMS calls reach only when allowed
LOCAL = AllowedHosts.of(["127.0.0.1"])

FAMILIES = 260
MEMBERS = (1001, 1002, 1003)  # family members of the first three families
LATENCY = 0.03
AT_ONCE = 8


def aging(n: int) -> dict[str, Any]:
    current, over = (n * 7919) % 60000, (n * 104729) % 90000
    return {
        "Bal_0_30": f"{current / 100:.2f}",
        "BalOver90": f"{over / 100:.2f}",
        "Total": f"{(current + over) / 100:.2f}",
        "InsEst": "25.00" if n % 5 == 0 else "0",
        "PatEstBal": f"{(current + over) / 100:.2f}",
        "DateLastPay": "2026-02-02" if n % 3 == 0 else "0001-01-01",
    }


@pytest.fixture
def od() -> Iterator[tuple[FakeOpenDental, str]]:
    fake = FakeOpenDental()
    for n in range(1, FAMILIES + 1):
        fake.add_patient(n, f"First{n}", f"Family{n}", aging=aging(n))
    for number, member in enumerate(MEMBERS, start=1):
        fake.add_patient(member, f"Kid{number}", f"Family{number}", guarantor=number)
    fake.latency = LATENCY
    with Served(fake.app) as url:
        yield fake, f"{url}/api/v1"


def connection(url: str, **more: Any) -> dict[str, Any]:
    return {
        "opendental": {
            "base_url": url,
            "developer_key": "dev-key",
            "customer_key": "cust-key",
            "timeout": 10,
            "sync_concurrency": AT_ONCE,
            **more,
        }
    }


@pytest.fixture
def elm(
    api_for: Callable[..., Api], clock: PinnedClock, od: tuple[FakeOpenDental, str]
) -> Iterator[Api]:
    api = api_for("sqlite", clock).setup(name="Elm Dental", pms="opendental")
    ctx(api).pms_connections.keep(api.practice_id, connection(od[1]))
    yield api
    SYNCS.wait(UUID(api.practice_id), 60)  # nothing left writing when the database goes


def ctx(api: Api) -> Components:
    found: Components = api.client.app.state.ctx  # type: ignore[attr-defined]
    return found


def rows(ctx: Components, practice_id: UUID) -> dict[str, dict[str, Any]]:
    """The AR list by PMS number, without what differs between two practices."""
    query = ArQuery(guarantors_only=False, with_balance_only=False)
    listed = ctx.reads(
        list_ar, practice_id, query, today="2026-03-04", sort="last_name", after=None, limit=None
    )
    kept = ("id", "practice_id", "guarantor_id")
    return {
        str(r["pms_patient_id"]): {k: v for k, v in dict(r).items() if k not in kept}
        for r in listed
    }


def history(ctx: Components, practice_id: UUID, pms_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A patient's events: their kind and what they say (ids and who aside)."""
    patient = ctx.get(Patient, patient_id_for(practice_id, pms_id), practice_id)
    events = ctx.store.repository.event_store.get(patient.id)
    aside = {"originator_id", "originator_version", "timestamp", "practice_id", "id", "actor"}
    return [
        (
            type(e).__name__,
            {
                k: (v is not None if k == "guarantor_id" else v)  # ids differ by practice
                for k, v in vars(e).items()
                if k not in aside
            },
        )
        for e in events
    ]


def sequential_sync(ctx: Components, practice_id: UUID, url: str) -> SyncResult:
    """The sync as it was: every patient, then one aging after another, each patient
    registered and each balance saved on its own."""
    reader = OpenDental(OpenDentalSettings.of_connection(connection(url)["opendental"], LOCAL))
    sync = start_sync(ctx, practice_id, "admin")
    assert sync.started_at is not None
    by_pms: dict[str, UUID] = {}
    seen = added = recorded = 0
    for pms_patient in reader.patients():
        seen += 1
        patient = ctx.find(Patient, patient_id_for(practice_id, pms_patient.pms_patient_id))
        if patient is None:
            patient = register_patient(
                ctx,
                practice_id=practice_id,
                pms_patient_id=pms_patient.pms_patient_id,
                first_name=pms_patient.first_name,
                last_name=pms_patient.last_name,
                email=pms_patient.email,
                phone=pms_patient.phone,
                guarantor_id=by_pms.get(pms_patient.guarantor_pms_id or ""),
                actor="admin",
            )
            added += 1
        by_pms[pms_patient.pms_patient_id] = patient.id
        if pms_patient.balance is not None and patient.record_balance(
            pms_patient.balance,
            source="pms-sync",
            at=ctx.clock.now(practice_id),
            actor="admin",
            as_of=sync.started_at,
        ):
            ctx.save(patient)
            recorded += 1
    result = SyncResult(seen, added, recorded)
    finish_sync(ctx, sync, "admin", result=result)
    return result


def test_the_sync_answers_at_once_moves_and_records_what_the_sequential_one_did(
    elm: Api, od: tuple[FakeOpenDental, str]
) -> None:
    fake, url = od
    api = elm
    asked = time.monotonic()
    answer = api.post("/v1/pms/sync")
    answered = time.monotonic() - asked
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == "/v1/pms/sync"
    # one call after another would take FAMILIES x 30 ms (some 8 s); the answer does not wait
    assert answered < 2.0, answered
    body = answer.json()
    assert body["started"] is True and body["pms_sync"]["outcome"] == "running"
    again = api.post("/v1/pms/sync")  # a second press: the running sync's status
    assert again.status_code == 202 and again.json()["started"] is False
    assert again.json()["pms_sync"]["last_started_at"] == body["pms_sync"]["last_started_at"]

    seen: list[int] = []
    while True:
        status = api.get("/v1/pms/sync").json()
        if status["outcome"] != "running":
            break
        progress = status["progress"]
        if progress["guarantors_total"] is not None:
            assert progress["guarantors_total"] == FAMILIES
            seen.append(progress["guarantors_done"])
        time.sleep(0.05)
    assert status["outcome"] == "ok", status
    assert any(0 < done < FAMILIES for done in seen), seen  # it moved while it ran
    assert seen == sorted(seen)
    progress = status["progress"]
    assert (progress["guarantors_done"], progress["guarantors_total"]) == (FAMILIES, FAMILIES)
    assert progress["patients_done"] == progress["patients_total"] == FAMILIES + len(MEMBERS)
    assert progress["finished_at"] == status["last_finished_at"] and progress["error"] is None
    assert (status["patients_seen"], status["balances_recorded"]) == (
        FAMILIES + len(MEMBERS),
        FAMILIES,
    )
    assert 1 < fake.in_flight.peak <= AT_ONCE  # in parallel, within the pool's bound
    assert fake.aging_reads == FAMILIES

    # the same office synced the old way, one call after another, into another practice
    components = ctx(api)
    fake.latency = 0.0
    other = UUID(api.new_practice(name="Elm Dental (sequential)", pms="opendental")["id"])
    components.pms_connections.keep(str(other), connection(url))
    result = sequential_sync(components, other, url)
    assert (result.patients_seen, result.balances_recorded) == (
        status["patients_seen"],
        status["balances_recorded"],
    )
    mine = UUID(api.practice_id)
    assert rows(components, mine) == rows(components, other)
    for pms_id in ("1", "2", "150", str(FAMILIES), "1001", "1002"):
        assert history(components, mine, pms_id) == history(components, other, pms_id)
    kid = components.get(Patient, patient_id_for(mine, "1002"), mine)
    assert kid.guarantor_id == patient_id_for(mine, "2")


def test_a_failure_midway_keeps_what_was_read_and_the_next_sync_completes(
    elm: Api, od: tuple[FakeOpenDental, str]
) -> None:
    fake, _ = od
    api = elm
    fake.broken_aging = {150}  # Open Dental fails on the 150th family's aging
    assert api.post("/v1/pms/sync").status_code == 202
    failed = ended(api)
    assert failed["outcome"] == "failed"
    assert "could not be read" in failed["error"] and "500" in failed["error"]
    assert failed["progress"]["error"] == failed["error"]
    components, mine = ctx(api), UUID(api.practice_id)
    kept = {k: r for k, r in rows(components, mine).items() if r["has_balance"]}
    # every chunk read before the failure is recorded, and the failing chunk's other reads
    assert {str(n) for n in range(1, 150)} <= set(kept), sorted(kept, key=int)[-5:]
    assert "150" not in kept
    assert failed["progress"]["guarantors_done"] >= 149

    fake.broken_aging = set()
    reads_before = fake.aging_reads
    assert api.post("/v1/pms/sync").status_code == 202
    done = ended(api)
    assert done["outcome"] == "ok", done
    assert done["progress"]["guarantors_done"] == FAMILIES
    assert fake.aging_reads - reads_before == FAMILIES  # read again as of its own start
    after = rows(components, mine)
    assert sum(1 for r in after.values() if r["has_balance"]) == FAMILIES
    assert after["150"]["total"] == int(aging(150)["Total"].replace(".", ""))
    # what the failed sync recorded is not recorded twice; each patient registered once
    first = history(components, mine, "1")
    assert [kind for kind, _ in first] == ["Registered", "BalanceRecorded"]
    late = history(components, mine, "150")
    assert [kind for kind, _ in late] == ["Registered", "BalanceRecorded"]
    today = sync_id_for(mine, components.clock.now(mine).date())
    ends = [
        e
        for e in components.store.repository.event_store.get(today)
        if isinstance(e, PmsSync.Finished)
    ]
    assert [e.outcome for e in ends] == ["failed", "ok"]


def test_a_throttling_open_dental_is_waited_out(elm: Api, od: tuple[FakeOpenDental, str]) -> None:
    fake, _ = od
    api = elm
    fake.most_at_once = 3  # more than three calls at once: 429, Retry-After
    fake.retry_after = "0.2"
    assert api.post("/v1/pms/sync").status_code == 202
    done = ended(api)
    assert done["outcome"] == "ok", done
    assert fake.throttled > 0
    assert fake.aging_reads == FAMILIES
    assert done["progress"]["guarantors_done"] == FAMILIES


def test_the_scheduled_sync_starts_in_the_background_too(
    elm: Api, od: tuple[FakeOpenDental, str], clock: PinnedClock
) -> None:
    api = elm
    answer = api.advance(1)
    assert answer["pms_syncs"] == 1  # due at once (never synced): started, not waited for
    assert api.get("/v1/pms/sync").json()["outcome"] in ("running", "ok")
    assert ended(api)["outcome"] == "ok"
    assert api.advance(60)["pms_syncs"] == 0  # the next one an hour after this one


def test_the_dashboard_starts_the_sync_and_shows_its_progress(
    elm: Api, od: tuple[FakeOpenDental, str]
) -> None:
    api = elm
    web, _ = browser(api, "desk@elm.example")
    page = web.get("/payments/ar")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    key = re.search(
        r'id="ar-sync-now">\s*<input[^>]*>\s*<input type="hidden" name="idempotency_key" '
        r'value="([^"]+)"',
        page.text,
    )
    assert csrf is not None and key is not None
    posted = web.post(
        "/payments/ar/sync",
        data={"csrf_token": csrf.group(1), "idempotency_key": key.group(1), "query": ""},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    shown = web.get(posted.headers["location"])
    assert "Sync with the PMS started" in shown.text
    line = web.get("/payments/ar/sync/status?query=")
    assert line.status_code == 200
    if 'data-poll="1"' in line.text:  # still running: it reads its progress again
        assert "Syncing now" in line.text and "ar-sync-now" not in line.text
    ended(api)
    line = web.get("/payments/ar/sync/status?query=")
    assert 'data-poll="1"' not in line.text and "last synced" in line.text
    assert f"{FAMILIES + len(MEMBERS)} patients read" in line.text
    assert "ar-sync-now" in line.text  # the button is back


def test_a_practice_without_a_pms_to_read_is_a_clear_409(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    api = api_for("sqlite", clock, sandbox=False).setup(pms="opendental")
    answer = api.post("/v1/pms/sync")
    assert answer.status_code == 409, answer.text
    assert "no PMS reader is configured" in answer.json()["detail"]
    assert api.get("/v1/pms/sync").json()["outcome"] is None
