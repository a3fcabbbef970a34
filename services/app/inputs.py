"""Request bodies. Amounts are strict integers (cents): floats and strings are refused."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.cards import CONSENT_MAX
from domain.money import MAX_AMOUNT_CENTS
from domain.payments import REVERSAL_NOTE_LENGTH
from domain.practices import MAX_FEE_RATE_BPS
from domain.receivables import MAX_BALANCE, SYNC_MINUTES_RANGE
from domain.requests import EXPIRES_AFTER, MAX_REMINDERS
from domain.schedule import CUTOFF_PATTERN
from services.app.ar_filters import CONTROL, FILTER_NAMES
from services.app.bounds import (
    Amount,
    Day,
    Id,
    Instant,
    stated,
    whole,
)

#: white space as str.strip and Python's `\s` see it, spelled out: JSON Schema's `\s` (ECMA
#: 262) leaves out some of it (NEL, U+0085), so a pattern with `\s` would allow more
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
EMAIL = re.compile(rf"^[^@{SPACE}]+@[^@{SPACE}]+\.[^@{SPACE}]+$")


def control_character_at(value: Any, path: str = "") -> str | None:
    """The path of the first text in a request body that holds a control character."""
    if isinstance(value, str):
        return path if CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and CONTROL.search(key):
                return where
            found = control_character_at(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = control_character_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def check_email(value: str) -> str:
    value = value.strip()
    if not EMAIL.match(value) or len(value) > 254:
        raise ValueError("must be an email address such as name@example.com")
    return value


Email = Annotated[
    str,
    AfterValidator(check_email),
    Field(json_schema_extra={"pattern": EMAIL.pattern, "maxLength": 254}),
]
#: a cut-off time, HH:MM (24-hour); the domain checks it with its own wording
Cutoff = Annotated[
    str,
    Field(
        max_length=5,
        examples=["23:59"],
        json_schema_extra={"pattern": f"^{CUTOFF_PATTERN.pattern}$"},
    ),
]
#: a character that is not white space (as str.strip sees it): names must hold one
NOT_BLANK = f"[^{SPACE}]"
Text = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK})]


def exactly_one_of(*names: str) -> dict[str, Any]:
    """A `oneOf` saying that exactly one of these properties is given and not null (the
    schema's statement of a rule the route checks with its own 422)."""
    return {
        "oneOf": [
            {
                "required": [name],
                "properties": {
                    name: {"not": {"type": "null"}},
                    **{other: {"type": "null"} for other in names if other != name},
                },
            }
            for name in names
        ]
    }


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def no_control_characters(cls, data: Any) -> Any:
        where = control_character_at(data)
        if where is not None:
            raise PydanticCustomError(
                "control_character",
                "must not hold control characters such as NUL; remove them",
                {"field": CONTROL.sub("?", where)},
            )
        return data


class DepositAccountIn(Body):
    kind: Text = Field(examples=["Checking"])
    last4: Annotated[str, Field(max_length=4, pattern=r"^\d{4}$", examples=["6789"])]


class PracticeIn(Body):
    name: Text
    timezone: Text = Field(examples=["America/New_York"])
    pms: Literal["opendental", "eaglesoft", "dentrix"]
    auto_writeback: StrictBool = False
    deposit_account: DepositAccountIn
    batch_cutoff: Cutoff = "23:59"


#: how long one call to the PMS may take, in seconds (the writeback's claim on an entry
#: outlasts an attempt's calls, so a shorter timeout frees a dead worker's entries sooner)
PmsTimeout = Annotated[
    StrictInt,
    whole(1, 120, description="seconds one call to the PMS may take (default 30)"),
]


class OpenDentalIn(Body):
    base_url: Annotated[str, Field(pattern=r"^https?://", max_length=300)]
    developer_key: Annotated[str, Field(min_length=1, max_length=200)]
    customer_key: Annotated[str, Field(min_length=1, max_length=200)]
    timeout: PmsTimeout | None = None


class EaglesoftIn(Body):
    bridge_url: Annotated[str, Field(pattern=r"^https?://", max_length=300)]
    token: Annotated[str, Field(min_length=1, max_length=500)]
    timeout: PmsTimeout | None = None


#: a PMS sync interval is 0 (by hand) or 15 minutes and more
NOT_SOON = {"minimum": 1, "maximum": SYNC_MINUTES_RANGE[0] - 1}


class SettingsIn(Body):
    pms: Literal["opendental", "eaglesoft", "dentrix"] | None = None
    auto_writeback: StrictBool | None = None
    batch_cutoff: Cutoff | None = None
    pms_payment_type: (
        Annotated[str, Field(max_length=50, json_schema_extra={"pattern": NOT_BLANK})] | None
    ) = None
    opendental: OpenDentalIn | None = Field(
        None, description="Open Dental API connection; the keys are stored apart and never shown"
    )
    eaglesoft: EaglesoftIn | None = Field(None, description="the office bridge agent")
    reminder_days: (
        Annotated[
            list[Annotated[StrictInt, Field(json_schema_extra=stated(1, EXPIRES_AFTER.days - 1))]],
            Field(json_schema_extra={"maxItems": MAX_REMINDERS}),
        ]
        | None
    ) = Field(None, description="up to two reminders, days after sending, e.g. [3, 10]")
    fee_rate_bps: (
        Annotated[StrictInt, Field(json_schema_extra=stated(0, MAX_FEE_RATE_BPS))] | None
    ) = Field(None, description="sandbox processing fee in basis points of each sale (290 = 2.9%)")
    pms_sync_minutes: (
        Annotated[
            StrictInt,
            Field(json_schema_extra={**stated(0, SYNC_MINUTES_RANGE[1]), "not": NOT_SOON}),
        ]
        | None
    ) = Field(
        None,
        description="how often balances are read from the PMS (Open Dental), in minutes: "
        "15 to 1440, default 60; 0 = only by hand (POST /v1/pms/sync)",
    )
    stripe_account: Annotated[str, Field(max_length=80)] | None = Field(
        None,
        description="not an admin's: the operator connects the practice's Stripe account "
        "(PUT /v1/practices/{id}/stripe-account); sent here it is refused with 403",
    )
    require_2fa_for_admins: StrictBool | None = Field(
        None,
        description="true: admins without two-step sign-in must turn it on at their next "
        "sign-in, before they reach any page",
    )


class StripeAccountIn(Body):
    stripe_account: Annotated[str, Field(max_length=80)] | None = Field(
        description="the practice's Stripe connected account id (acct_...), onboarded "
        "through Stripe Connect; null disconnects it"
    )


class ClearentKeyIn(Body):
    api_key: (
        Annotated[str, Field(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")] | None
    ) = Field(
        description="the practice's API key at Clearent (its Virtual Terminal's settings, "
        "API Keys); kept sealed and never shown again; null forgets it"
    )


class UserIn(Body):
    name: Text
    role: Literal["admin", "staff", "auditor"]
    email: Email | None = Field(
        None, description="the person's sign-in email (unique); needs `password` too"
    )
    password: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="a first password, at least 10 characters; needs `email` too"
    )


class RoleIn(Body):
    role: Literal["admin", "staff", "auditor"]


class PasswordIn(Body):
    password: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="the person's new password (at least 10 characters)"
    )


class PatientIn(Body):
    pms_patient_id: Annotated[
        str, Field(min_length=1, max_length=64, json_schema_extra={"pattern": NOT_BLANK})
    ]
    first_name: Text
    last_name: Text
    email: Email | None = None
    phone: Annotated[str, Field(max_length=21, pattern=r"^\+?[0-9 ()\-]{7,20}$")] | None = None
    guarantor_id: Id | None = None


class CardIn(Body):
    """A card as typed. The schema states its shape; the card's own rules (the Luhn check
    digit, not expired) are checked when it is used (422 `invalid-card`)."""

    number: Annotated[
        str,
        Field(
            min_length=1,
            max_length=23,
            description="12 to 19 digits; spaces and dashes between them are ignored",
            json_schema_extra={"pattern": "^[ -]*([0-9][ -]*){12,19}$"},
        ),
    ]
    exp_month: Annotated[StrictInt, Field(json_schema_extra=stated(1, 12))]
    exp_year: Annotated[
        StrictInt,
        Field(
            description="four digits (2030), or two (30)",
            json_schema_extra=stated(0, 2100, anyOf=[{"maximum": 99}, {"minimum": 2000}]),
        ),
    ]
    cvc: Annotated[
        str, Field(min_length=1, max_length=4, json_schema_extra={"pattern": "^[0-9]{3,4}$"})
    ]


class PaymentIn(Body):
    """A `terminal` payment names its reader and takes no card; a `virtual_terminal` one
    carries exactly one of `card` (sandbox) or `payment_method` (Stripe)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["method", "terminal_id"],
                    "properties": {
                        "method": {"const": "terminal"},
                        "terminal_id": {"type": "string", "maxLength": 64},
                        "card": {"type": "null"},
                        "payment_method": {"type": "null"},
                    },
                },
                {
                    "required": ["method"],
                    "properties": {"method": {"const": "virtual_terminal"}},
                    **exactly_one_of("card", "payment_method"),
                },
            ]
        }
    )

    method: Literal["terminal", "virtual_terminal"]
    amount: Amount
    terminal_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    card: CardIn | None = Field(
        None, description="the card as typed (sandbox only; refused when Stripe processes cards)"
    )
    payment_method: (
        Annotated[
            str,
            Field(max_length=203, pattern=r"^(pm_[A-Za-z0-9_]{1,200}|[0-9]{12,24}:[0-9]{4})$"),
        ]
        | None
    ) = Field(
        None,
        description="a Stripe PaymentMethod id from Stripe's Payment Element (pm_...); with "
        "Clearent, the card's Clearent token and its expiry MMYY (token:MMYY)",
    )
    patient_id: Id | None = None


class RefundIn(Body):
    amount: Amount | None = Field(
        None, description="cents to refund; omit for the whole remainder (a void is always full)"
    )
    reason: (
        Literal["patient_request", "duplicate", "overcharge", "treatment_changed", "other"] | None
    ) = Field(None, description="why: recorded on the refund or void, shown in its history")
    note: Annotated[str, Field(max_length=REVERSAL_NOTE_LENGTH)] | None = Field(
        None, description="a few words more; needed when the reason is `other`"
    )


class AssociateIn(Body):
    source: Literal["manual", "inbox"]
    pms_reference: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    refund_id: Id | None = Field(
        None, description="mark this refund's negative entry as recorded instead of the payment"
    )
    void: StrictBool = Field(
        False, description="mark the void's negative entry (of a payment posted, then voided)"
    )
    dispute: StrictBool = Field(
        False, description="mark the negative entry of the payment's lost dispute"
    )


#: a phone number to text (a pattern of digits, spaces, parentheses and dashes)
Phone = Annotated[str, Field(max_length=21, pattern=r"^\+?[0-9 ()\-]{7,20}$")]


class ReceiptSendIn(Body):
    """A copy by email (`email` and `confirm_email`) or by text (`phone` and
    `confirm_phone`): exactly one of the two."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("email", "phone"))

    email: Email | None = None
    confirm_email: Email | None = Field(
        None, description="the same address again, as the person confirmed it"
    )
    phone: Phone | None = None
    confirm_phone: Phone | None = Field(
        None, description="the same number again, as the person confirmed it"
    )
    refund_id: Id | None = None


class ClockAdvanceIn(Body):
    """Exactly one of `seconds` or `to`: the schema says so with `oneOf`."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("seconds", "to"))

    seconds: Annotated[StrictInt, whole(1, 400 * 86400)] | None = None
    to: Instant | None = None


class PaymentRequestIn(Body):
    patient_id: Id
    amount: Amount
    channel: Literal["sms", "email"]
    destination: Annotated[str, Field(min_length=3, max_length=254)] | None = Field(
        None, description="default: the patient's phone (sms) or email"
    )
    override_snooze: StrictBool = Field(False, description="send even if the patient is snoozed")


Balance = Annotated[StrictInt, whole(-MAX_BALANCE, MAX_BALANCE)]


class BalanceIn(Body):
    """A PMS balance snapshot for a guarantor (cents; negative is a credit)."""

    total: Balance
    bal_0_30: Balance = 0
    bal_31_60: Balance = 0
    bal_61_90: Balance = 0
    bal_over_90: Balance = 0
    insurance_estimate: Balance = 0
    patient_portion: Balance | None = Field(None, description="default: total - insurance")
    on_payment_plan: StrictBool = False
    is_guarantor: StrictBool = True
    last_payment_date: Day | None = None


class SnoozeIn(Body):
    until: Day
    reason: Literal[
        "claim_not_started",
        "claim_needs_resubmission",
        "adjustment_pending",
        "personal_arrangement",
        "other",
    ]
    note: Annotated[str, Field(max_length=500)] | None = None


#: an AR filter: its names are stated here; its values are checked by the AR rules
FILTER: dict[str, Any] = {"propertyNames": {"enum": list(FILTER_NAMES)}}


class FilterIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    filter: dict[str, Any] = Field(json_schema_extra=FILTER)


class BulkIn(Body):
    model_config = ConfigDict(
        json_schema_extra=exactly_one_of("patient_ids", "filter", "filter_id")
    )

    patient_ids: list[Id] | None = Field(
        None, max_length=1_000, description="up to 1,000 (a body is at most 64 KiB)"
    )
    filter: dict[str, Any] | None = Field(None, json_schema_extra=FILTER)
    filter_id: Id | None = None
    channel: Literal["sms", "email", "preferred"] = "preferred"
    amount_rule: Literal[
        "total", "patient_portion", "bal_0_30", "bal_31_60", "bal_61_90", "bal_over_90"
    ] = "total"
    min_balance: Annotated[StrictInt, whole(1, MAX_AMOUNT_CENTS)] = 1
    guarantors_only: StrictBool = True
    skip_payment_plan: StrictBool = True
    skip_snoozed: StrictBool = True


# --- cards on file and payment plans ---


class CardSaveIn(Body):
    """A card to keep on file: exactly one of `card` (sandbox) or `payment_method`
    (Stripe), and the consent the patient gave, in the words they were shown."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("card", "payment_method"))

    card: CardIn | None = Field(None, description="the card as typed (sandbox only)")
    payment_method: (
        Annotated[str, Field(max_length=203, pattern=r"^pm_[A-Za-z0-9_]{1,200}$")] | None
    ) = Field(None, description="a Stripe PaymentMethod id from Stripe's Payment Element (pm_...)")
    consent: Annotated[str, Field(min_length=1, max_length=CONSENT_MAX)] = Field(
        description="the consent the patient gave, as worded to them (recorded with its time)"
    )


class CardChargeIn(Body):
    amount: Amount


class PlanIn(Body):
    patient_id: Id
    card_id: Id = Field(description="a card on file of the patient")
    amount: Amount = Field(description="cents charged each time (the last charge: what is left)")
    total: Amount = Field(description="cents in all; the plan completes when they are charged")
    every: Annotated[StrictInt, Field(json_schema_extra=stated(1, 52))] = Field(
        description="charges every this many weeks (1 to 52) or months (1 to 12)"
    )
    unit: Literal["weeks", "months"]
    start: Day = Field(description="the first charge's date (the practice's date)")
    note: Annotated[str, Field(max_length=500)] | None = None


class PlanCancelIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=500)]
