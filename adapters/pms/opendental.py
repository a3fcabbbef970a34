"""Open Dental through its REST API (remote or the local API on the office network).

Header ``Authorization: ODFHIR {DeveloperKey}/{CustomerKey}``; PascalCase fields;
numbers and booleans may come back as strings. Payments: ``POST /payments``
(PayAmt in dollars, PayDate, PayType, PayNote with our marker, isPatientPreferred);
refunds and voids are negative payments. Read back: ``GET /payments?PatNum=&DateEntry=``.
Commlogs: ``POST /commlogs``. Balances: ``GET /accountmodules/{PatNum}/Aging``;
patients: ``GET /patients`` paged with Limit/Offset (at most 100 rows a call).
The keys are never logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from adapters.pms.port import Commlog, LedgerEntry, PmsWriteError, PmsWriter, Written
from adapters.pms.reader import PmsPatient, PmsReader, PmsUnavailable
from domain.money import Money
from domain.receivables import Balance, default_patient_portion

PAGE = 100


@dataclass(frozen=True)
class OpenDentalSettings:
    base_url: str
    developer_key: str
    customer_key: str
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"OpenDentalSettings(base_url={self.base_url!r}, keys=***)"

    @classmethod
    def of_connection(cls, connection: Mapping[str, Any]) -> OpenDentalSettings:
        """From a practice's kept connection settings (its "opendental" part)."""
        return cls(
            connection["base_url"],
            connection["developer_key"],
            connection["customer_key"],
            float(connection.get("timeout", 30)),
        )


def to_cents(value: Any) -> int:
    """'339', '339.5', 339.5 or None as cents (Open Dental sends numbers as strings)."""
    if value in (None, ""):
        return 0
    try:
        return int((Decimal(str(value)) * 100).quantize(Decimal(1)))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def to_bool(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


class OpenDental(PmsWriter, PmsReader):
    def __init__(self, settings: OpenDentalSettings, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.Client(timeout=settings.timeout)
        self._headers = {
            "Authorization": f"ODFHIR {settings.developer_key}/{settings.customer_key}",
            "Content-Type": "application/json",
        }

    def _url(self, path: str) -> str:
        return self._settings.base_url.rstrip("/") + path

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        writes: bool = False,
    ) -> Any:
        try:
            response = self._client.request(
                method, self._url(path), json=json, params=params, headers=self._headers
            )
        except httpx.TimeoutException as error:
            raise PmsWriteError(
                f"Open Dental timed out on {method} {path}", retryable=True, outcome_unknown=writes
            ) from error
        except httpx.HTTPError as error:
            raise PmsWriteError(
                f"Open Dental unreachable: {type(error).__name__}",
                retryable=True,
                outcome_unknown=False,
            ) from error
        status = response.status_code
        if status == 429:
            raise PmsWriteError(
                "Open Dental is throttling (429)", retryable=True, retry_after=retry_after(response)
            )
        if status >= 500:
            raise PmsWriteError(
                f"Open Dental answered {status} on {method} {path}",
                retryable=True,
                outcome_unknown=writes,
            )
        if status == 404:
            raise PmsWriteError(f"Open Dental: not found ({response.text[:200]})", retryable=False)
        if status >= 400:
            raise PmsWriteError(
                f"Open Dental refused ({status}): {response.text[:300]}",
                retryable=status in (401, 403),
            )
        return response.json() if response.content else None

    # -- writer ----------------------------------------------------------------------

    def post_entry(self, entry: LedgerEntry) -> Written:
        body: dict[str, Any] = {
            "PatNum": int(entry.pms_patient_id),
            "PayAmt": Money(entry.amount).dollars(),
            "PayDate": entry.pay_date.isoformat(),
            "PayNote": f"{entry.note} {entry.tag}"[:4000],
            "isPatientPreferred": "true" if entry.patient_preferred else "false",
        }
        if entry.pay_type:
            body["PayType"] = int(entry.pay_type)
        answer = self._call("POST", "/payments", json=body, writes=True)
        return Written(f"PayNum {answer['PayNum']}")

    def find_entry(self, entry: LedgerEntry) -> Written | None:
        params = {"PatNum": entry.pms_patient_id, "DateEntry": entry.pay_date.isoformat()}
        rows = self._call("GET", "/payments", params=params) or []
        for row in rows:
            if entry.tag in str(row.get("PayNote", "")):
                return Written(f"PayNum {row['PayNum']}")
        return None

    def post_commlog(self, commlog: Commlog) -> Written | None:
        body = {
            "PatNum": int(commlog.pms_patient_id),
            "CommDateTime": commlog.at.strftime("%Y-%m-%d %H:%M:%S"),
            "Mode_": commlog.mode,
            "SentOrReceived": "Sent",
            "Note": f"{commlog.note} [ref:{commlog.marker}]",
            "commType": "Misc",
        }
        answer = self._call("POST", "/commlogs", json=body, writes=True)
        return Written(f"CommlogNum {answer.get('CommlogNum')}")

    # -- reader ----------------------------------------------------------------------

    def patients(self) -> Iterator[PmsPatient]:
        try:
            offset = 0
            rows_all: list[dict[str, Any]] = []
            while True:
                rows = self._call("GET", "/patients", params={"Limit": PAGE, "Offset": offset})
                rows_all.extend(rows or [])
                if not rows or len(rows) < PAGE:
                    break
                offset += PAGE
            rows_all.sort(key=lambda r: str(r.get("Guarantor")) != str(r.get("PatNum")))
            for row in rows_all:
                yield self._patient(row)
        except PmsWriteError as error:
            raise PmsUnavailable(str(error)) from error

    def _patient(self, row: dict[str, Any]) -> PmsPatient:
        pat_num, guarantor = str(row["PatNum"]), str(row.get("Guarantor") or row["PatNum"])
        balance = self.aging(pat_num) if guarantor == pat_num else None
        phone = row.get("WirelessPhone") or row.get("HmPhone") or None
        return PmsPatient(
            pat_num,
            str(row.get("FName", "")),
            str(row.get("LName", "")),
            row.get("Email") or None,
            phone,
            None if guarantor == pat_num else guarantor,
            balance,
        )

    def aging(self, pat_num: str) -> Balance:
        a = self._call("GET", f"/accountmodules/{pat_num}/Aging") or {}
        total = to_cents(a.get("Total"))
        insurance = to_cents(a.get("InsEst"))
        return Balance(
            total=total,
            bal_0_30=to_cents(a.get("Bal_0_30")),
            bal_31_60=to_cents(a.get("Bal_31_60")),
            bal_61_90=to_cents(a.get("Bal_61_90")),
            bal_over_90=to_cents(a.get("BalOver90")),
            insurance_estimate=insurance,
            patient_portion=to_cents(a.get("PatEstBal"))
            if a.get("PatEstBal") is not None
            else default_patient_portion(total, insurance),
            on_payment_plan=to_bool(a.get("HasPaymentPlan", False)),
            is_guarantor=True,
            last_payment_date=parse_date(a.get("DateLastPay")),
        )


def parse_date(value: Any) -> date | None:
    try:
        parsed = date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None
    return None if parsed.year < 1900 else parsed


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
