"""A patient's page words the PMS balance's adjustment as the AR list does: money paid
here since the PMS's figures is "less", money refunded here since is "plus", never a
minus sign after "less"."""

from __future__ import annotations

from tests.browser.conftest import Browse
from tests.browser.test_reading_right import api, ar_row_when, ar_rows, card_payment


def balance_note(browse: Browse, patient_id: str) -> str:
    browse.go(f"/payments/patients/{patient_id}")
    note = browse.page.locator("p", has_text="From the PMS as of").first
    return " ".join(note.inner_text().split())


def test_paid_and_refunded_since_read_as_less_and_plus(browse: Browse) -> None:
    by_patient = {r["id"]: r for r in ar_rows(browse)}
    row = next(r for r in by_patient.values() if r["total"] > 2000 and r["collected_since"] == 0)
    paid = card_payment(browse, 1500, row["id"], "4242424242424242")
    assert paid["status"] == "approved"
    ar_row_when(browse, row["id"], lambda r: r["collected_since"] == 1500)
    browse.sign_in()
    note = balance_note(browse, row["id"])
    assert "less $15.00 paid here since" in note, note
    assert "-$" not in note, note

    listed = api(browse, "GET", "/v1/transactions", params={"status": "settled", "limit": 100})
    assert listed.status_code == 200, listed.text
    by_patient = {r["id"]: r for r in ar_rows(browse)}
    settled = next(
        t
        for t in listed.json()["items"]
        if t["patient_id"] in by_patient
        and not t["refunded_amount"]
        and by_patient[t["patient_id"]]["collected_since"] == 0
    )
    refunded = api(browse, "POST", f"/v1/payments/{settled['id']}/refund")
    assert refunded.status_code in (200, 201), refunded.text
    back = ar_row_when(browse, settled["patient_id"], lambda r: r["collected_since"] < 0)
    note = balance_note(browse, settled["patient_id"])
    browse.shot("patient-refunded-since")
    assert f"plus ${-back['collected_since'] / 100:,.2f} refunded here since" in note, note
    assert "-$" not in note and "less" not in note, note
    api(browse, "POST", f"/v1/payments/{paid['id']}/refund")  # puts the balance back
