"""AR sync from Open Dental: patients paged with Limit/Offset, family aging with numbers
as strings, guarantors before their family members."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.fakes.opendental import FakeOpenDental, Served
from tests.pms_syncs import ended


def test_pms_sync_reads_open_dental(api_for: Any, clock: Any) -> None:
    od = FakeOpenDental()
    for n in range(1, 131):  # more than one page of 100
        od.add_patient(
            n,
            first=f"F{n}",
            last=f"L{n}",
            aging={
                "Bal_0_30": "12.5",
                "Bal_31_60": 0,
                "Bal_61_90": "0",
                "BalOver90": "250",
                "Total": "262.50",
                "InsEst": "40",
                "PatEstBal": "222.50",
                "DateLastPay": "2026-01-15",
            },
        )
    od.add_patient(200, first="Kid", last="L1", guarantor=1)
    with Served(od.app) as url:
        api: Api = api_for("sqlite", clock).setup(pms="opendental")
        patched = api.client.patch(
            f"/v1/practices/{api.practice_id}/settings",
            headers=api.admin,
            json={
                "opendental": {
                    "base_url": f"{url}/api/v1",
                    "developer_key": "dev-key",
                    "customer_key": "cust-key",
                }
            },
        )
        assert patched.status_code == 200
        answer = api.post("/v1/pms/sync")
        assert answer.status_code == 202, answer.text
        assert answer.json()["started"] is True
        status = ended(api)
    assert status["outcome"] == "ok", status
    assert (status["patients_seen"], status["balances_recorded"]) == (131, 130)
    progress = status["progress"]
    assert (progress["guarantors_done"], progress["guarantors_total"]) == (130, 130)
    assert (progress["patients_done"], progress["patients_total"]) == (131, 131)
    assert progress["finished_at"] == status["last_finished_at"]
    rows = api.get("/v1/ar/patients", params={"q": "f7 l7", "limit": 5}).json()["items"]
    [row] = [r for r in rows if r["pms_patient_id"] == "7"]
    assert (row["total"], row["bal_0_30"], row["bal_over_90"]) == (26250, 1250, 25000)
    assert (row["insurance_estimate"], row["patient_portion"]) == (4000, 22250)
    assert row["last_payment_date"] == "2026-01-15"
    kid = api.get("/v1/patients", params={"limit": 100}).json()["items"]
    assert any(p["pms_patient_id"] == "200" and p["guarantor_id"] for p in kid)


def test_an_unreachable_open_dental_is_a_clear_error(api_for: Any, clock: Any) -> None:
    api: Api = api_for("sqlite", clock).setup(pms="opendental")
    api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        headers=api.admin,
        json={
            "opendental": {
                "base_url": "http://127.0.0.1:9/api/v1",
                "developer_key": "d",
                "customer_key": "c",
            }
        },
    )
    answer = api.post("/v1/pms/sync")
    assert answer.status_code == 202, answer.text  # answered at once; read in the background
    status = ended(api)
    assert status["outcome"] == "failed"
    assert "could not be read" in status["error"]
    assert "could not connect to Open Dental at 127.0.0.1" in status["error"]
