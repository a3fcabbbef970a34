"""A practice switched to Clearent: its key, its day, its deposits from Clearent's batches,
its saved cards, and what Clearent cannot do here (readers).

Every request the adapter sends is checked against Clearent's published description by the
fake (the fixture fails a test that sent one it refused)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest

from adapters.processor.clearent import PRODUCTION_URL, SANDBOX_URL, ClearentProcessor
from adapters.processor.port import CardInput, Effect, ProcessorRefused
from adapters.sealed import Sealer
from domain.errors import InvalidCard, InvalidValue
from tests.clearent_fixtures import clearent_api, served_fake_clearent  # noqa: F401
from tests.conftest import Api, PinnedClock
from tests.fakes.clearent import FakeClearent

HOUR = 3600
DAY = 24 * HOUR
VISA = "1100000000000004242:1230"


def pay(api: Api, amount: int, method: str = VISA) -> dict[str, object]:
    answer = api.post(
        "/v1/payments",
        {"method": "virtual_terminal", "amount": amount, "payment_method": method},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def close_of(api: Api, day: str) -> dict[str, object]:
    answer = api.get("/v1/reports/daily-close", params={"date": day})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def deposits(api: Api) -> list[dict[str, object]]:
    answer = api.get("/v1/deposits", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, object]] = answer.json()["items"]
    return sorted(found, key=lambda d: str(d["batch_date"]))


def test_a_day_on_clearent_closes_its_batch_at_the_cut_off_and_matches_the_deposit(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent)
    kept = pay(api, 30000)
    voided = pay(api, 4500)
    assert api.post(f"/v1/payments/{voided['id']}/refund").json()["kind"] == "void"
    api.advance(23 * HOUR)  # past the cut-off: captured, the ledger's batch closed

    (closed,) = fake_clearent.batch_answers(key, "CLOSED")  # closed by the ledger, validated
    assert (closed["sales-count"], closed["sales-total"], closed["net-amount"]) == (
        "1",
        "300.00",
        "300.00",
    )
    report = close_of(api, "2026-03-04")
    assert report["batch_close"] == {
        "by": "practice_cutoff",
        "batch_time_utc": None,
        "cutoff": "23:59",
        "detail": "the ledger closes Clearent's batch at the practice's cut-off, with the "
        "totals of its own batch (Clearent refuses a close whose totals differ)",
    }
    (deposit,) = [d for d in deposits(api) if d["gross_amount"] == 30000]
    assert deposit["status"] == "paid"
    assert report["differences"] == [
        d
        for d in report["differences"]
        if d["kind"] == "payment_not_associated"  # type: ignore[index, union-attr]
    ]
    assert deposit["payout"]["id"] == "clearent-batch-000001", deposit  # type: ignore[index]
    assert fake_clearent.captures[str(kept["transaction_id"])] == 1

    # a partial refund after settlement, against the AUTH's id; the next batch holds it
    refund = api.post(f"/v1/payments/{kept['id']}/refund", {"amount": 8000})
    assert refund.status_code == 200, refund.text
    assert fake_clearent.refunded(str(kept["transaction_id"])) == [8000]
    api.advance(DAY)
    (_, second) = fake_clearent.batch_answers(key, "CLOSED")
    assert (second["refund-count"], second["net-amount"]) == ("1", "-80.00")
    (next_deposit,) = [d for d in deposits(api) if d["refunds_amount"] == 8000]
    assert next_deposit["status"] == "paid"


def test_where_clearent_closes_the_batch_itself_the_daily_close_says_so_and_matches_later(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent, auto_close=True, batch_time_utc="04:00")
    pay(api, 12000)
    api.advance(23 * HOUR)
    assert fake_clearent.batch_answers(key, "CLOSED") == []  # the ledger leaves it to Clearent
    report = close_of(api, "2026-03-04")
    assert report["batch_close"]["by"] == "clearent"  # type: ignore[index]
    assert "04:00 UTC" in report["batch_close"]["detail"]  # type: ignore[index]
    (deposit,) = deposits(api)
    assert deposit["status"] == "scheduled"

    fake_clearent.close_batches(key)  # Clearent's own batch time
    api.advance(HOUR)
    (deposit,) = deposits(api)
    assert deposit["status"] == "paid"


def test_a_batch_item_the_ledger_does_not_hold_is_a_difference_of_the_daily_close(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent, auto_close=True)
    pay(api, 5000)
    api.advance(23 * HOUR)
    with fake_clearent.lock:  # a sale keyed in Clearent's own virtual terminal
        sale = fake_clearent.new_transaction(
            key, "SALE", 1999, card="1111", **{"last-four": "1111"}
        )
        fake_clearent.into_batch(key, sale)
    fake_clearent.close_batches(key)
    api.advance(HOUR)
    report = close_of(api, "2026-03-04")
    kinds = {d["kind"]: d for d in report["differences"]}  # type: ignore[union-attr, index]
    assert kinds["batch_unknown_item"]["amount"] == 1999
    assert kinds["batch_unknown_item"]["transaction_id"] == sale["id"]
    assert report["balanced"] is False


def test_a_card_on_file_is_a_clearent_token_charged_later(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    processor = ctx.processor
    assert processor.saves_cards
    saved = processor.save_card(
        reference=uuid4(),
        card=CardInput("4111111111111111", 12, 2030, "999"),
        account=api.practice_id,
    )
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("visa", "1111", 12, 2030)
    assert saved.token in fake_clearent.tokens
    reference = uuid4()
    charged = processor.charge(
        reference=reference, amount=2500, saved_card=saved, account=api.practice_id
    )
    assert (charged.approved, charged.brand, charged.last4) == (True, "visa", "1111")
    again = processor.charge(
        reference=reference, amount=2500, saved_card=saved, account=api.practice_id
    )
    assert again == charged  # read back by its order id, never authorised twice
    assert len(fake_clearent.of(key, "AUTH")) == 1
    looked = processor.look_up(
        effect=Effect.CHARGE, reference=reference, transaction_id="", account=api.practice_id
    )
    assert (looked.state, looked.processor_id) == ("succeeded", charged.transaction_id)


def test_readers_are_not_driven_from_here_on_clearent(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, _ = clearent_api(api_for, clock, fake_clearent)
    answer = api.post("/v1/payments", {"method": "terminal", "amount": 1000, "terminal_id": "r1"})
    assert answer.status_code == 422, answer.text
    assert "Clearent's card readers are driven by Clearent's mobile SDK" in answer.json()["detail"]
    assert fake_clearent.requests == []  # nothing was sent


def test_card_numbers_go_only_to_clearents_sandbox() -> None:
    def keys(_: str) -> str:
        return "k" * 32

    assert ClearentProcessor(keys, base_url=SANDBOX_URL).accepts_card_numbers
    production = ClearentProcessor(keys, base_url=PRODUCTION_URL)
    assert not production.accepts_card_numbers
    card = CardInput("4111111111111111", 12, 2030, "999")
    with pytest.raises(InvalidCard, match="not accepted with Clearent's production gateway"):
        production.charge(reference=uuid4(), amount=100, card=card, account="p")
    with pytest.raises(InvalidCard):
        production.save_card(reference=uuid4(), card=card, account="p")


def test_the_key_is_the_operators_kept_sealed_and_never_answered(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent)
    path = f"/v1/practices/{api.practice_id}/clearent-key"
    refused = api.client.put(path, json={"api_key": "x" * 32}, headers=api.admin)
    assert refused.status_code == 403
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    (row,) = ctx.store.database().query("SELECT api_key FROM processor_keys")
    assert key not in row["api_key"] and Sealer.is_sealed(row["api_key"])
    assert key not in api.get(f"/v1/practices/{api.practice_id}").text
    bad = api.client.put(path, json={"api_key": "no spaces allowed"}, headers=api.operator)
    assert bad.status_code == 422
    gone = api.client.put(path, json={"api_key": None}, headers=api.operator)
    assert gone.json()["connected"] is False
    answer = api.post(
        "/v1/payments",
        {"method": "virtual_terminal", "amount": 1000, "payment_method": VISA},
    )
    assert answer.status_code == 422
    assert "no Clearent API key" in answer.json()["detail"]


def test_a_clearent_key_is_refused_where_another_processor_runs(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    api = api_for("sqlite", clock).setup()
    answer = api.client.put(
        f"/v1/practices/{api.practice_id}/clearent-key",
        json={"api_key": "k" * 32},
        headers=api.operator,
    )
    assert answer.status_code == 409
    assert "processes cards on sandbox, not Clearent" in answer.json()["detail"]


def test_a_refund_beyond_what_remains_is_refused_by_clearent_too(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    """The ledger refuses it first; Clearent, asked directly, refuses it as well."""
    api, _ = clearent_api(api_for, clock, fake_clearent)
    payment = pay(api, 5000)
    api.advance(23 * HOUR)
    processor = api.client.app.state.ctx.processor  # type: ignore[attr-defined]
    with pytest.raises(ProcessorRefused, match="exceeds the amount available"):
        processor.refund(
            transaction_id=str(payment["transaction_id"]),
            amount=5001,
            reference=uuid4(),
            account=api.practice_id,
        )
    with pytest.raises(InvalidValue, match="token and its expiry"):
        processor.charge(
            reference=uuid4(), amount=100, payment_method="pm_x", account=api.practice_id
        )


def test_the_status_page_says_who_closes_the_batch_at_clearent(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    from tests.e2e.test_html_pages import browser

    api, _ = clearent_api(api_for, clock, fake_clearent, auto_close=True, batch_time_utc="04:00")
    pay(api, 12000)
    api.advance(23 * HOUR)
    web, _ = browser(api, "office@elm.example")
    page = web.get("/payments/status", params={"date": "2026-03-04"})
    assert page.status_code == 200, page.text
    assert (
        "Clearent closes the batch itself at 04:00 UTC (its gateway settings): payments "
        "captured at your cut-off are deposited with the batch Clearent closes next."
    ) in page.text


@pytest.mark.parametrize("fault", ["slow", "drop-after-apply", "500-after-apply"])
def test_an_authorisation_whose_answer_is_late_or_lost_is_read_back_not_sent_again(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent, fault: str
) -> None:
    api, key = clearent_api(api_for, clock, fake_clearent)
    processor = ClearentProcessor(
        lambda _: key, base_url=fake_clearent.base_url, backoff=0, timeout=0.5
    )
    fake_clearent.slow_seconds = 1.5  # longer than the adapter waits
    fake_clearent.fail_next("/rest/v2/transactions", fault)
    reference = uuid4()
    result = processor.charge(
        reference=reference, amount=4200, payment_method=VISA, account=api.practice_id
    )
    (auth,) = fake_clearent.of(key, "AUTH")
    assert (result.approved, result.transaction_id) == (True, auth["id"])
    assert auth["order-id"] == str(reference)


def test_a_late_authorisation_is_never_sent_twice_by_a_retry(
    api_for: Callable[..., Api], clock: PinnedClock, fake_clearent: FakeClearent
) -> None:
    """The request left, its answer was lost, and it reaches Clearent only later: the same
    request again within the settling time is read back and answered 502, never sent."""
    api, key = clearent_api(api_for, clock, fake_clearent)
    body = {"method": "virtual_terminal", "amount": 4200, "payment_method": VISA}
    headers = {**api.admin, "Idempotency-Key": "late-collect-1"}
    fake_clearent.fail_next("/rest/v2/transactions", "late")
    first = api.client.post("/v1/payments", json=body, headers=headers)
    assert first.status_code == 502, first.text
    again = api.client.post("/v1/payments", json=body, headers=headers)
    assert again.status_code == 502, again.text
    assert "not sent again for" in again.json()["detail"]
    assert fake_clearent.of(key, "AUTH") == []
    assert fake_clearent.deliver_late() == 1  # it arrives
    api.advance(16 * 60)
    # meanwhile the reconciler read it back: authorised, never recorded, so released
    # (voided: the person was told it was not recorded); the same request says so
    (auth,) = fake_clearent.of(key, "AUTH")  # authorised once
    assert auth["voided-auth"] == "true"
    third = api.client.post("/v1/payments", json=body, headers=headers)
    assert third.status_code == 409, third.text
    assert len(fake_clearent.of(key, "AUTH")) == 1
