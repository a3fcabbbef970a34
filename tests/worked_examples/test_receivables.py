"""Worked examples: chasing balances from the AR list, as an office manager does.

Elm Dental (New York); the clock starts on Wednesday 4 March 2026, 10:00 local.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.pms_syncs import sync


def patient(
    api: Api,
    pms_id: str,
    name: str,
    *,
    email: bool = True,
    phone: bool = True,
    guarantor: str | None = None,
) -> str:
    first, last = name.split()
    body: dict[str, Any] = {"pms_patient_id": pms_id, "first_name": first, "last_name": last}
    if email:
        body["email"] = f"{first.lower()}@example.com"
    if phone:
        body["phone"] = f"+1617555{int(pms_id):04d}"
    if guarantor:
        body["guarantor_id"] = guarantor
    response = api.post("/v1/patients", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def balance(api: Api, patient_id: str, over_90: int = 0, current: int = 0, **extra: Any) -> None:
    body = {"total": over_90 + current, "bal_0_30": current, "bal_over_90": over_90, **extra}
    response = api.client.put(f"/v1/patients/{patient_id}/balance", json=body, headers=api.admin)
    assert response.status_code == 200, response.text


def snooze(api: Api, patient_id: str, until: str = "2026-04-15") -> None:
    response = api.post(
        f"/v1/patients/{patient_id}/snooze", {"until": until, "reason": "claim_not_started"}
    )
    assert response.status_code == 200, response.text


def names(api: Api, **params: Any) -> list[str]:
    response = api.get("/v1/ar/patients", params=params)
    assert response.status_code == 200, response.text
    return [f"{r['first_name']} {r['last_name']}" for r in response.json()["items"]]


def test_over_90_days_above_200_dollars_not_snoozed(api: Api) -> None:
    ana = patient(api, "1", "Ana Lopez")
    ben = patient(api, "2", "Ben Hart")
    cat = patient(api, "3", "Cat Wu")
    dev = patient(api, "4", "Dev Rao")
    balance(api, ana, over_90=25000)  # $250 over 90 days: in
    balance(api, ben, over_90=15000, current=90000)  # only $150 over 90: out
    balance(api, cat, over_90=40000)  # in, but snoozed: out
    balance(api, dev, current=50000)  # nothing over 90: out
    snooze(api, cat)

    query = {"min_bal_over_90": 20001, "snoozed": "false"}
    assert names(api, **query) == ["Ana Lopez"]
    answer = api.get("/v1/ar/patients", params=query).json()
    assert answer["filters"] == {"min_bal_over_90": 20001, "snoozed": False}
    assert names(api, min_bal_over_90=20001) == ["Cat Wu", "Ana Lopez"]  # -total first


def test_a_saved_filter_reapplied_later_reflects_new_balances(api: Api) -> None:
    ana, ben = patient(api, "1", "Ana Lopez"), patient(api, "2", "Ben Hart")
    balance(api, ana, over_90=25000)
    balance(api, ben, over_90=5000)
    saved = api.post(
        "/v1/ar/filters", {"name": "Over 90, above $200", "filter": {"min_bal_over_90": 20001}}
    )
    assert saved.status_code == 201, saved.text
    filter_id = saved.json()["id"]
    assert names(api, filter_id=filter_id) == ["Ana Lopez"]

    # A week later the PMS reports Ana paid down and Ben's balance aged.
    balance(api, ana, over_90=10000)
    balance(api, ben, over_90=30000)
    assert names(api, filter_id=filter_id) == ["Ben Hart"]
    library = api.get("/v1/ar/filters").json()["items"]
    assert [(f["name"], f["filter"]) for f in library] == [
        ("Over 90, above $200", {"min_bal_over_90": 20001})
    ]
    duplicate = api.post("/v1/ar/filters", {"name": "over 90, ABOVE $200", "filter": {}})
    assert duplicate.status_code == 409
    assert api.client.delete(f"/v1/ar/filters/{filter_id}", headers=api.admin).status_code == 204
    assert api.get("/v1/ar/filters").json()["items"] == []


def test_a_bulk_send_to_ten_explains_the_four_it_skips(api: Api) -> None:
    ids = {f"P{n}": patient(api, str(n), f"Pat P{n}") for n in range(1, 7)}
    ids["Snoozed1"] = patient(api, "7", "Sam Snooze")
    ids["Snoozed2"] = patient(api, "8", "Sue Snooze")
    ids["NoPhone"] = patient(api, "9", "Nat Nophone", phone=False)
    ids["Small"] = patient(api, "10", "Tim Tiny")
    for name, pid in ids.items():
        balance(api, pid, current=1500 if name == "Small" else 30000)
    snooze(api, ids["Snoozed1"])
    snooze(api, ids["Snoozed2"])

    body = {
        "patient_ids": list(ids.values()),
        "channel": "sms",
        "amount_rule": "total",
        "min_balance": 2000,
    }
    first = api.post(
        "/v1/payment-requests/bulk", body, headers={**api.admin, "Idempotency-Key": "march-run"}
    )
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["sent"], answer["skipped"]) == (6, 4)
    by_patient = {r["patient_id"]: r for r in answer["results"]}
    assert {by_patient[ids[n]]["reason"] for n in ("Snoozed1", "Snoozed2")} == {"snoozed"}
    assert by_patient[ids["NoPhone"]]["reason"] == "no_contact"
    assert by_patient[ids["Small"]]["reason"] == "below_minimum"
    assert all(by_patient[ids[f"P{n}"]]["outcome"] == "sent" for n in range(1, 7))
    assert len(api.get("/v1/sandbox/mailbox").json()["items"]) == 6

    # Retrying with the same key sends nothing more.
    again = api.post(
        "/v1/payment-requests/bulk", body, headers={**api.admin, "Idempotency-Key": "march-run"}
    )
    assert again.json() == answer
    assert len(api.get("/v1/sandbox/mailbox").json()["items"]) == 6
    # The requests are in the Payment Requests report.
    report = api.get("/v1/payment-requests", params={"status": "requested"}).json()["items"]
    assert len(report) == 6


def test_a_single_request_to_a_snoozed_patient_needs_an_override(api: Api) -> None:
    pid = patient(api, "1", "Ana Lopez")
    balance(api, pid, current=5000)
    response = api.post(
        f"/v1/patients/{pid}/snooze",
        {"until": "2026-04-01", "reason": "other", "note": "waiting on EOB"},
    )
    assert response.status_code == 200
    refused = api.post(
        "/v1/payment-requests", {"patient_id": pid, "amount": 5000, "channel": "email"}
    )
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "until 2026-04-01" in detail and "waiting on EOB" in detail
    sent = api.post(
        "/v1/payment-requests",
        {"patient_id": pid, "amount": 5000, "channel": "email", "override_snooze": True},
    )
    assert sent.status_code == 201
    # Ending the snooze early puts Ana back in line.
    assert api.client.delete(f"/v1/patients/{pid}/snooze", headers=api.admin).status_code == 200
    assert names(api, snoozed="false") == ["Ana Lopez"]


def test_a_snooze_ends_by_itself_at_its_date(api: Api) -> None:
    pid = patient(api, "1", "Ana Lopez")
    balance(api, pid, current=5000)
    snooze(api, pid, until="2026-03-06")
    assert names(api, snoozed="true") == ["Ana Lopez"]
    api.advance(2 * 86400)  # Friday 6 March
    assert names(api, snoozed="true") == []
    history = api.get(f"/v1/history/{pid}").json()["items"]
    assert history[-1]["type"] == "PatientSnoozeEnded"
    assert history[-1]["data"]["how"] == "expired"


def test_pms_sync_brings_the_demo_families(api: Api) -> None:
    status = sync(api)
    counts = {k: status[k] for k in ("outcome", "patients_seen", "balances_recorded")}
    assert counts == {"outcome": "ok", "patients_seen": 12, "balances_recorded": 9}
    assert sync(api)["balances_recorded"] == 0  # nothing changed
    rows = api.get("/v1/ar/patients", params={"limit": 100}).json()["items"]
    assert len(rows) == 8  # guarantors with a balance (one family owes $0.00: not listed)
    assert rows[0]["total"] >= rows[-1]["total"]
    on_plan = names(api, on_payment_plan="true")
    assert on_plan == ["Tom Becker"]


def test_bad_filters_are_explained(api: Api) -> None:
    assert api.get("/v1/ar/patients", params={"min_total": "abc"}).status_code == 422
    assert api.get("/v1/ar/patients", params={"colour": "red"}).json()["field"] == "colour"
    assert api.get("/v1/ar/patients", params={"sort": "password"}).status_code == 422
    empty = api.get("/v1/ar/patients", params={"min_total": 500, "max_total": 100})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]


def last_paid(api: Api, patient_id: str) -> Any:
    response = api.get("/v1/ar/patients", params={"q": "Lopez"})
    assert response.status_code == 200, response.text
    return next(r for r in response.json()["items"] if r["id"] == patient_id)["last_payment_date"]


def test_last_paid_is_not_a_payment_given_back_after_the_pms_counted_it(api: Api) -> None:
    # Ana Lopez last paid on 10 February, the PMS says; she owes $300.00.
    ana = patient(api, "1", "Ana Lopez")
    balance(api, ana, current=30000, last_payment_date="2026-02-10")
    assert last_paid(api, ana) == "2026-02-10"

    # 10:00 - she pays $120.00 at the desk; it is posted to the PMS by hand, and the next
    # sync has the PMS's own last payment date: today.
    payment = api.pay(12000, patient_id=ana).json()
    posted = api.post(f"/v1/payments/{payment['id']}/associate", {"source": "manual"})
    assert posted.status_code == 200, posted.text
    api.advance(3600)
    balance(api, ana, current=18000, last_payment_date="2026-03-04")
    assert last_paid(api, ana) == "2026-03-04"

    # The next day the whole $120.00 is refunded: it is nobody's last payment, and the
    # PMS's date of it no longer counts, before the next sync and after it (which dates
    # the refund's negative entry today).
    api.advance(24 * 3600)
    refund = api.post(f"/v1/payments/{payment['id']}/refund").json()
    assert (refund["kind"], refund["amount"]) == ("refund", 12000)
    assert last_paid(api, ana) is None
    balance(api, ana, current=30000, last_payment_date="2026-03-05")
    assert last_paid(api, ana) is None
