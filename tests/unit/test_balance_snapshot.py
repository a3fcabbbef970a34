"""A PMS balance snapshot: the patient's portion defaults to what insurance will not pay."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import InvalidValue
from domain.receivables import Balance, default_patient_portion

VALUES = {
    "total": 30000,
    "bal_0_30": 10000,
    "bal_31_60": 0,
    "bal_61_90": 0,
    "bal_over_90": 20000,
    "insurance_estimate": 12000,
    "on_payment_plan": False,
    "is_guarantor": True,
    "last_payment_date": date(2026, 2, 1),
}


def test_without_a_portion_the_patient_owes_what_insurance_will_not_pay() -> None:
    assert Balance.from_snapshot(**VALUES).patient_portion == 18000


def test_a_portion_the_pms_gave_is_kept_even_zero() -> None:
    assert Balance.from_snapshot(**VALUES, patient_portion=5000).patient_portion == 5000
    assert Balance.from_snapshot(**VALUES, patient_portion=0).patient_portion == 0


@pytest.mark.parametrize(
    ("total", "insurance", "portion"), [(100, 300, 0), (-500, 0, 0), (0, 0, 0), (250, 50, 200)]
)
def test_the_default_portion_is_never_below_zero(total: int, insurance: int, portion: int) -> None:
    assert default_patient_portion(total, insurance) == portion
    snapshot = Balance.from_snapshot(**{**VALUES, "total": total, "insurance_estimate": insurance})
    assert snapshot.patient_portion == portion


def test_a_snapshot_is_still_checked() -> None:
    with pytest.raises(InvalidValue):
        Balance.from_snapshot(**{**VALUES, "total": 10**12})
