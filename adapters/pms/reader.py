"""The PMS reader port: patients and their family balances as the PMS keeps them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from domain.receivables import Balance


@dataclass(frozen=True)
class PmsPatient:
    pms_patient_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    guarantor_pms_id: str | None
    balance: Balance | None  # on guarantors; None for family members


class PmsReader(ABC):
    @abstractmethod
    def patients(self) -> Iterator[PmsPatient]:
        """Every patient, guarantors before their family members."""


class PmsUnavailable(Exception):
    """The PMS could not be read (connector down, bad credentials)."""
