"""A sandbox PMS that serves the demo office's patients and balances, and a simulated
Open Dental that takes the demo's writeback (its ledger kept in this process's memory)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from adapters.pms.port import Commlog, PmsEntry, PmsWriter, Written
from adapters.pms.reader import PmsPatient, PmsReader
from domain.receivables import Balance, default_patient_portion

# pms id, first, last, email, phone, guarantor, (0-30, 31-60, 61-90, >90, ins. est., plan)
FAMILIES: list[tuple[str, str, str, str | None, str | None, str | None, tuple[int, ...] | None]] = [
    (
        "1001",
        "Maria",
        "Alvarez",
        "maria.alvarez@example.com",
        "+1 617 555 0101",
        None,
        (12000, 0, 0, 0, 4000, 0),
    ),
    ("1002", "Diego", "Alvarez", None, None, "1001", None),
    (
        "1003",
        "James",
        "Okafor",
        "james.okafor@example.com",
        "+1 617 555 0103",
        None,
        (0, 8500, 0, 31000, 10000, 0),
    ),
    ("1004", "Priya", "Raman", "priya.raman@example.com", None, None, (4500, 0, 0, 0, 0, 0)),
    ("1005", "Tom", "Becker", None, "+1 617 555 0105", None, (0, 0, 0, 52000, 0, 1)),
    (
        "1006",
        "Linh",
        "Nguyen",
        "linh.nguyen@example.com",
        "+1 617 555 0106",
        None,
        (20000, 15000, 0, 0, 12000, 0),
    ),
    ("1007", "Anh", "Nguyen", None, None, "1006", None),
    (
        "1008",
        "Sarah",
        "Cohen",
        "sarah.cohen@example.com",
        "+1 617 555 0108",
        None,
        (0, 0, 9000, 26000, 0, 0),
    ),
    ("1009", "Kwame", "Mensah", "kwame.mensah@example.com", None, None, (0, 0, 0, 0, 0, 0)),
    ("1010", "Emily", "Walsh", None, "+1 617 555 0110", None, (7500, 0, 0, 18000, 2500, 0)),
    ("1011", "Oliver", "Walsh", None, None, "1010", None),
    (
        "1012",
        "Fatima",
        "Haddad",
        "fatima.haddad@example.com",
        "+1 617 555 0112",
        None,
        (3000, 3000, 3000, 3000, 0, 0),
    ),
]


def balance_of(values: tuple[int, ...]) -> Balance:
    b0, b31, b61, b90, insurance, plan = values
    total = b0 + b31 + b61 + b90
    return Balance(
        total=total,
        bal_0_30=b0,
        bal_31_60=b31,
        bal_61_90=b61,
        bal_over_90=b90,
        insurance_estimate=insurance,
        patient_portion=default_patient_portion(total, insurance),
        on_payment_plan=bool(plan),
        is_guarantor=True,
        last_payment_date=date(2026, 9, 15) if total else None,
    )


class SandboxPmsReader(PmsReader):
    def patients(self) -> Iterator[PmsPatient]:
        for pms_id, first, last, email, phone, guarantor, values in FAMILIES:
            yield PmsPatient(
                pms_id, first, last, email, phone, guarantor, balance_of(values) if values else None
            )


#: the connection block of a practice connected to the simulated Open Dental (kept by the
#: demo in sandbox mode only: the API's Open Dental connection takes a URL and two keys)
SIMULATED = {"simulated": "sandbox"}


def is_simulated(block: Mapping[str, Any] | None) -> bool:
    return bool(block) and block.get("simulated") == SIMULATED["simulated"]  # type: ignore[union-attr]


class SimulatedOpenDental(PmsWriter):
    """Open Dental as the sandbox simulates it: every entry and commlog is accepted and
    numbered as Open Dental numbers them (PayNum, CommlogNum), and found again by its
    marker. Its ledger lives in this process (a restart forgets it, as a sandbox may)."""

    lookup_by_day = False
    _lock = threading.Lock()
    _numbers = itertools.count(50001)
    _ledger: dict[str, Written] = {}

    def post_entry(self, entry: PmsEntry) -> Written:
        return self._keep(entry.tag, "PayNum")

    def find_entry(self, entry: PmsEntry) -> Written | None:
        with self._lock:
            return self._ledger.get(entry.tag)

    def post_commlog(self, commlog: Commlog) -> Written | None:
        return self._keep(f"commlog:{commlog.marker}", "CommlogNum")

    def find_commlog(self, commlog: Commlog) -> Written | None:
        with self._lock:
            return self._ledger.get(f"commlog:{commlog.marker}")

    def _keep(self, key: str, kind: str) -> Written:
        with self._lock:
            written = self._ledger.get(key)
            if written is None:
                written = Written(f"{kind} {next(self._numbers)}")
                self._ledger[key] = written
            return written
