"""Practice (the tenant): its calendar, PMS and payments settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import PracticeAggregate
from domain.errors import InvalidValue
from domain.receivables import DEFAULT_SYNC_MINUTES, check_sync_minutes
from domain.requests import check_reminder_days
from domain.schedule import DEFAULT_CUTOFF, parse_cutoff, zone


class PmsKind(StrEnum):
    OPENDENTAL = "opendental"
    EAGLESOFT = "eaglesoft"
    DENTRIX = "dentrix"


@dataclass(frozen=True)
class DepositAccount:
    kind: str
    last4: str

    def __post_init__(self) -> None:
        if not (len(self.last4) == 4 and self.last4.isascii() and self.last4.isdigit()):
            raise InvalidValue(
                "the deposit account's last four digits must be four digits",
                field="deposit_account",
            )
        if not self.kind.strip():
            raise InvalidValue(
                "the deposit account must be named, e.g. 'Checking'",
                field="deposit_account",
            )

    @property
    def masked(self) -> str:
        return f"{self.kind} ****{self.last4}"


#: settings that PATCH .../settings may change, with their validators (the processor
#: account is not one: it is connected by the operator, `connect_account`)
SETTING_NAMES = (
    "pms",
    "auto_writeback",
    "batch_cutoff",
    "pms_payment_type",
    "fee_rate_bps",
    "reminder_days",
    "pms_sync_minutes",
    "require_2fa_for_admins",
)

#: the highest processing fee rate a practice can be set to: 10%
MAX_FEE_RATE_BPS = 1000


class Practice(PracticeAggregate):
    class Created(PracticeAggregate.Created):
        name: str
        timezone: str
        pms: str
        auto_writeback: bool
        deposit_account_kind: str
        deposit_account_last4: str
        batch_cutoff: str

        def apply(self, practice: Practice) -> None:
            practice.practice_id = self.practice_id
            practice.name = self.name
            practice.timezone = self.timezone
            practice.pms = PmsKind(self.pms)
            practice.auto_writeback = self.auto_writeback
            practice.deposit_account = DepositAccount(
                self.deposit_account_kind, self.deposit_account_last4
            )
            practice.batch_cutoff = parse_cutoff(self.batch_cutoff)
            practice.pms_payment_type = None
            practice.fee_rate_bps = 0
            practice.reminder_days = []
            practice.pms_sync_minutes = DEFAULT_SYNC_MINUTES
            practice.stripe_account = None
            practice.require_2fa_for_admins = False
            practice.created_at = self.at

    class SettingsChanged(PracticeAggregate.Event):
        changes: dict[str, Any]

        def apply(self, practice: Practice) -> None:
            for name, value in self.changes.items():
                if name == "pms":
                    practice.pms = PmsKind(value)
                elif name == "batch_cutoff":
                    practice.batch_cutoff = parse_cutoff(value)
                else:
                    setattr(practice, name, value)

    if TYPE_CHECKING:
        name: str
        timezone: str
        pms: PmsKind
        auto_writeback: bool
        deposit_account: DepositAccount
        batch_cutoff: time
        pms_payment_type: str | None
        fee_rate_bps: int
        reminder_days: list[int]
        pms_sync_minutes: int
        #: the practice's Stripe connected account (acct_...), where Stripe processes its cards
        stripe_account: str | None
        #: admins without a second factor must turn one on before they reach any page
        require_2fa_for_admins: bool
        created_at: datetime

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        name: str,
        timezone: str,
        pms: PmsKind,
        auto_writeback: bool,
        deposit_account: DepositAccount,
        batch_cutoff: time = DEFAULT_CUTOFF,
        at: datetime,
        actor: str,
    ) -> Practice:
        if not name.strip():
            raise InvalidValue("the practice needs a name", field="name")
        zone(timezone)
        check_writeback(pms, auto_writeback)
        return cls._create(
            cls.Created,
            id=id,
            practice_id=id,
            name=name.strip(),
            timezone=timezone,
            pms=pms.value,
            auto_writeback=auto_writeback,
            deposit_account_kind=deposit_account.kind,
            deposit_account_last4=deposit_account.last4,
            batch_cutoff=batch_cutoff.strftime("%H:%M"),
            at=at,
            actor=actor,
        )

    def change_settings(self, changes: dict[str, Any], *, at: datetime, actor: str) -> bool:
        """Record the settings that differ from the current ones; False if none did."""
        checked = {name: check_setting(name, value) for name, value in changes.items()}
        different = {k: v for k, v in checked.items() if self.setting(k) != v}
        check_writeback(
            PmsKind(checked.get("pms", self.pms.value)),
            bool(checked.get("auto_writeback", self.auto_writeback)),
        )
        if different:
            self.record(self.SettingsChanged, at=at, actor=actor, changes=different)
        return bool(different)

    def connect_account(self, account: str | None, *, at: datetime, actor: str) -> bool:
        """Record the practice's Stripe connected account (None: disconnected); False when
        it is the account already. The caller holds the account's claim
        (domain/processor_accounts.py), so no other practice has it."""
        checked = check_stripe_account(account)
        if checked == self.stripe_account:
            return False
        self.record(self.SettingsChanged, at=at, actor=actor, changes={"stripe_account": checked})
        return True

    def setting(self, name: str) -> Any:
        if name == "batch_cutoff":
            return self.batch_cutoff.strftime("%H:%M")
        if name == "pms":
            return self.pms.value
        return getattr(self, name)


def check_writeback(pms: PmsKind, auto_writeback: bool) -> None:
    """Automatic writeback needs a PMS with an API: Dentrix offices post by hand."""
    if pms == PmsKind.DENTRIX and auto_writeback:
        raise InvalidValue(
            "automatic writeback cannot be turned on for a Dentrix practice: Dentrix accepts "
            "no payments written by other programs, so staff post them by hand from the Post "
            "to Ledger queue",
            field="auto_writeback",
        )


def check_setting(name: str, value: Any) -> Any:
    if name not in SETTING_NAMES:
        raise InvalidValue(f"unknown setting {name!r}", field=name)
    if name == "pms":
        try:
            return PmsKind(value).value
        except ValueError:
            raise InvalidValue(
                f"pms must be one of {', '.join(k.value for k in PmsKind)}", field="pms"
            ) from None
    if name == "batch_cutoff":
        return parse_cutoff(str(value)).strftime("%H:%M")
    if name in ("auto_writeback", "require_2fa_for_admins") and not isinstance(value, bool):
        raise InvalidValue(f"{name.replace('_', ' ')} must be true or false", field=name)
    if name == "reminder_days":
        if not isinstance(value, list):
            raise InvalidValue(
                "the reminder days must be a list of days such as [3, 10]", field=name
            )
        return check_reminder_days(value)
    if name == "fee_rate_bps" and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FEE_RATE_BPS
    ):
        raise InvalidValue(
            f"the processing fee rate must be a whole number of basis points from 0 to "
            f"{MAX_FEE_RATE_BPS} "
            "(e.g. 290 = 2.9%)",
            field=name,
        )
    if name == "pms_sync_minutes":
        return check_sync_minutes(value)
    if name == "pms_payment_type" and value is not None and not str(value).strip():
        raise InvalidValue(
            "the PMS payment type must be the PMS's id of a payment type", field=name
        )
    return value if name != "pms_payment_type" or value is None else str(value)


def check_stripe_account(value: Any) -> str | None:
    """A Stripe connected account's id (acct_...), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"acct_[A-Za-z0-9]{1,64}", value):
        raise InvalidValue(
            "the Stripe account must be the practice's Stripe account id, such as "
            "acct_1Nv0FGQ9RKHgCVdK (or null to disconnect it)",
            field="stripe_account",
        )
    return value
