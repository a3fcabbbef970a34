"""The receipt as a PDF through the API: `GET /v1/payments/{id}/receipt.pdf` (and a
refund's, `?refund_id=`), the same document the dashboard's download gives; another
practice's payment, or a refund the payment does not have, is not found."""

from __future__ import annotations

import re
from uuid import uuid4

from tests.conftest import Api
from tests.e2e.support import assert_problem, second_practice

HOUR = 3600


def text_of(pdf: bytes) -> str:
    """The words of an uncompressed PDF's text lines (each drawn as `(...) Tj`)."""
    return " ".join(m.decode("latin-1") for m in re.findall(rb"\((.*?)\) Tj", pdf))


def test_a_payment_and_its_refund_have_a_pdf_receipt(api: Api) -> None:
    payment = api.pay(30000).json()
    answer = api.get(f"/v1/payments/{payment['id']}/receipt.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    assert f'filename="receipt-{payment["id"][:8]}.pdf"' in answer.headers["content-disposition"]
    assert answer.content.startswith(b"%PDF-")
    words = text_of(answer.content)
    assert "Elm Dental" in words and "Receipt" in words and "$300.00" in words
    assert "Visa ending 4242" in words and payment["transaction_id"] in words
    assert "4242424242424242" not in words

    # After the batch closed, $80.00 of it is refunded: its own receipt, by its id.
    api.advance(23 * HOUR)
    refund = api.post(
        f"/v1/payments/{payment['id']}/refund", {"amount": 8000, "reason": "overcharge"}
    ).json()
    assert refund["kind"] == "refund"
    answer = api.get(
        f"/v1/payments/{payment['id']}/receipt.pdf", params={"refund_id": refund["refund_id"]}
    )
    assert answer.status_code == 200, answer.text
    words = text_of(answer.content)
    assert "Refund receipt" in words and "$80.00" in words and "$300.00" not in words
    assert "Reason Overcharge" in words
    assert f"receipt-{refund['refund_id'][:8]}.pdf" in answer.headers["content-disposition"]

    # A refund this payment does not have is not found, and says so.
    missing = api.get(
        f"/v1/payments/{payment['id']}/receipt.pdf", params={"refund_id": str(uuid4())}
    )
    assert_problem(missing, 404, says="no refund")


def test_another_practices_payment_has_no_pdf_receipt_here(api: Api) -> None:
    payment = api.pay(4500).json()
    oak = second_practice(api)
    answer = api.client.get(f"/v1/payments/{payment['id']}/receipt.pdf", headers=oak.admin)
    assert_problem(answer, 404)
    assert b"%PDF" not in answer.content
    # Nor is it given to staff of its own practice (the API is for admins), nor without a token.
    assert (
        api.client.get(f"/v1/payments/{payment['id']}/receipt.pdf", headers=api.staff).status_code
        == 403
    )
    assert api.client.get(f"/v1/payments/{payment['id']}/receipt.pdf").status_code == 401
