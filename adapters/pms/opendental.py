"""Open Dental through its REST API (remote or the local API on the office network).

Header ``Authorization: ODFHIR {DeveloperKey}/{CustomerKey}``; PascalCase fields;
numbers and booleans may come back as strings. Payments: ``POST /payments``
(PayAmt in dollars, PayDate, PayType, PayNote with our marker, isPatientPreferred);
refunds and voids are negative payments. Read back: ``GET /payments?PatNum=&DateEntry=``.
Commlogs: ``POST /commlogs``, read back by ``GET /commlogs?PatNum=``. Balances:
``GET /accountmodules/{PatNum}/Aging``; patients: ``GET /patients`` paged with
Limit/Offset (at most 100 rows a call). Its API has no call that gives many families'
aging at once, so a sync reads the patients' pages, then one aging per guarantor, up to
`sync_concurrency` calls at once (a connection setting, default 16), and waits out any
429's Retry-After (and keeps to `requests_per_second` when the connection sets one).
The keys are never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from adapters.pms.addresses import AllowedHosts
from adapters.pms.http import Answer, BoundedHttp, CallFailed, NotJson
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter, Written
from adapters.pms.reader import (
    DEFAULT_CONCURRENCY,
    PmsPatient,
    PmsReader,
    PmsUnavailable,
    Throttle,
    Throttled,
)
from domain.money import Money
from domain.receivables import Balance, default_patient_portion

log = logging.getLogger("payledger.pms")

PAGE = 100
#: calls at once a sync makes to one practice's Open Dental unless its connection says
SYNC_CONCURRENCY = int(os.environ.get("PAYLEDGER_PMS_SYNC_CONCURRENCY", DEFAULT_CONCURRENCY))


@dataclass(frozen=True)
class OpenDentalSettings:
    base_url: str
    developer_key: str
    customer_key: str
    timeout: float = 30.0
    #: a sync's calls under way at once (its pool), and the calls a second it may start
    #: (None: no known rate; a 429 is waited out whatever this says)
    sync_concurrency: int = SYNC_CONCURRENCY
    requests_per_second: float | None = None
    #: hosts the operator lets calls reach even at private addresses (adapters/pms/addresses.py)
    allowed: AllowedHosts = field(default_factory=AllowedHosts)

    def __repr__(self) -> str:
        return f"OpenDentalSettings(base_url={self.base_url!r}, keys=***)"

    @classmethod
    def of_connection(
        cls, connection: Mapping[str, Any], allowed: AllowedHosts | None = None
    ) -> OpenDentalSettings:
        """From a practice's kept connection settings (its "opendental" part)."""
        rate = connection.get("requests_per_second")
        return cls(
            connection["base_url"],
            connection["developer_key"],
            connection["customer_key"],
            float(connection.get("timeout", 30)),
            int(connection.get("sync_concurrency") or SYNC_CONCURRENCY),
            float(rate) if rate else None,
            allowed or AllowedHosts(),
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
        self._http = BoundedHttp(
            settings.timeout, client, name="Open Dental", allowed=settings.allowed
        )
        self.call_seconds = settings.timeout
        self._throttle = Throttle(settings.sync_concurrency, settings.requests_per_second)
        self.concurrency = self._throttle.concurrency
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
        """The answer's JSON; PmsWriteError otherwise. For a write, anything that may
        have happened after the request left (a timeout, a dropped connection, a 5xx, a
        redirect, a 2xx whose body is not JSON) leaves its outcome unknown."""
        try:
            answer = self._http.request(
                method, self._url(path), json=json, params=params, headers=self._headers
            )
        except CallFailed as error:
            raise PmsWriteError(
                str(error), retryable=True, outcome_unknown=writes and error.sent
            ) from error
        status = answer.status
        if status == 429:
            raise PmsWriteError(
                "Open Dental is throttling (429)",
                retryable=True,
                retry_after=retry_after(answer.headers),
            )
        if status >= 500:
            logged(answer, method, path)
            raise PmsWriteError(
                f"Open Dental answered {status} on {method} {path}",
                retryable=True,
                outcome_unknown=writes,
            )
        if 300 <= status < 400 or status < 200:
            logged(answer, method, path)
            raise PmsWriteError(
                f"Open Dental answered {status} on {method} {path}"
                + (" (a redirect, not followed)" if 300 <= status < 400 else "")
                + ": check the connection's base URL",
                retryable=True,
                outcome_unknown=writes,
            )
        if status == 404:
            logged(answer, method, path)
            raise PmsWriteError(
                f"Open Dental answered 404 (not found) on {method} {path}", retryable=False
            )
        if status >= 400:
            logged(answer, method, path)
            raise PmsWriteError(
                f"Open Dental refused ({status}) on {method} {path}"
                + (": check the developer and customer keys" if status in (401, 403) else ""),
                retryable=status in (401, 403),
            )
        try:
            return answer.json()
        except NotJson as error:
            raise PmsWriteError(
                f"Open Dental answered {status} on {method} {path} with {error}: "
                "is the base URL its API's?",
                retryable=True,
                outcome_unknown=writes,
            ) from error

    # -- writer ----------------------------------------------------------------------

    def post_entry(self, entry: PmsEntry) -> Written:
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
        if not isinstance(answer, dict) or answer.get("PayNum") in (None, ""):
            raise PmsWriteError(
                "Open Dental answered POST /payments without the payment's PayNum",
                retryable=True,
                outcome_unknown=True,
            )
        return Written(f"PayNum {answer['PayNum']}")

    def find_entry(self, entry: PmsEntry) -> Written | None:
        params = {"PatNum": entry.pms_patient_id, "DateEntry": entry.pay_date.isoformat()}
        rows = self._call("GET", "/payments", params=params) or []
        if not isinstance(rows, list):
            raise PmsWriteError(
                "Open Dental answered GET /payments with something other than a list",
                retryable=True,
            )
        for row in rows:
            if isinstance(row, dict) and entry.tag in str(row.get("PayNote", "")):
                return Written(f"PayNum {row.get('PayNum')}")
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
        number = answer.get("CommlogNum") if isinstance(answer, dict) else None
        return Written(f"CommlogNum {number}")

    def find_commlog(self, commlog: Commlog) -> Written | None:
        """Read back by the marker in the note: ``GET /commlogs?PatNum=``."""
        rows = self._call("GET", "/commlogs", params={"PatNum": commlog.pms_patient_id}) or []
        if not isinstance(rows, list):
            raise PmsWriteError(
                "Open Dental answered GET /commlogs with something other than a list",
                retryable=True,
            )
        tag = f"[ref:{commlog.marker}]"
        for row in rows:
            if isinstance(row, dict) and tag in str(row.get("Note", "")):
                return Written(f"CommlogNum {row.get('CommlogNum')}")
        return None

    # -- reader ----------------------------------------------------------------------

    def _read(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET within the sync's limits (a 429 waited out and asked again)."""

        def once() -> Any:
            try:
                return self._call("GET", path, params=params)
            except PmsWriteError as error:
                if error.retry_after is not None:
                    raise Throttled(str(error), error.retry_after) from error
                raise

        try:
            return self._throttle.call(once)
        except Throttled as error:
            raise PmsUnavailable(f"{error} (still, after waiting as asked)") from error
        except PmsWriteError as error:
            raise PmsUnavailable(str(error)) from error

    def patients(self) -> Iterator[PmsPatient]:
        """Every patient, guarantors first, each guarantor with its aging (one call after
        another; a sync reads `roster` and `balance_of` in parallel instead)."""
        for patient in self.roster():
            yield patient if patient.guarantor_pms_id else self._with_balance(patient)

    def _with_balance(self, patient: PmsPatient) -> PmsPatient:
        return PmsPatient(
            patient.pms_patient_id,
            patient.first_name,
            patient.last_name,
            patient.email,
            patient.phone,
            patient.guarantor_pms_id,
            self.balance_of(patient),
        )

    def roster(self) -> list[PmsPatient]:
        """Every patient, guarantors first, without their balances (`balance_of`): the
        pages read `concurrency` at a time. Anything but the answers documented (an
        unreachable or refusing API, a page that is not a list of patients, a page served
        again whatever the Offset) is PmsUnavailable, saying what was wrong."""
        try:
            rows_all = self._all_pages()
            rows_all.sort(key=lambda r: str(r.get("Guarantor")) != str(r.get("PatNum")))
            return [self._patient(row) for row in rows_all]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("Open Dental answered with a patient not as documented: %r", error)
            raise PmsUnavailable(
                "Open Dental answered with a patient not as its documentation says"
            ) from error

    def _all_pages(self) -> list[dict[str, Any]]:
        rows_all: list[dict[str, Any]] = []
        seen: set[str] = set()
        offset = 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="od-pages") as pool:
            while True:
                offsets = [offset + PAGE * n for n in range(self.concurrency)]
                answers = list(pool.map(self._page, offsets))
                for at, page in zip(offsets, answers, strict=True):
                    numbers = {str(r.get("PatNum")) for r in page}
                    if page and numbers <= seen:
                        raise PmsUnavailable(
                            f"Open Dental answered GET /patients at Offset {at} with patients "
                            "it had already listed (is Offset honoured?)"
                        )
                    seen |= numbers
                    rows_all.extend(page)
                    if len(page) < PAGE:
                        return rows_all
                offset = offsets[-1] + PAGE

    def _page(self, offset: int) -> list[dict[str, Any]]:
        rows = self._read("/patients", {"Limit": PAGE, "Offset": offset})
        return self._rows(rows, "GET /patients")

    def balance_of(self, patient: PmsPatient) -> Balance | None:
        """The family's aging (a guarantor's): one call, within the sync's limits."""
        if patient.guarantor_pms_id is not None:
            return patient.balance
        try:
            return self.aging(patient.pms_patient_id)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("Open Dental answered with a balance not as documented: %r", error)
            raise PmsUnavailable(
                "Open Dental answered with a balance not as its documentation says"
            ) from error

    @staticmethod
    def _rows(rows: Any, call: str) -> list[dict[str, Any]]:
        if rows is None:
            return []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise PmsUnavailable(f"Open Dental answered {call} with something other than a list")
        return rows

    @staticmethod
    def _patient(row: dict[str, Any]) -> PmsPatient:
        pat_num, guarantor = str(row["PatNum"]), str(row.get("Guarantor") or row["PatNum"])
        phone = row.get("WirelessPhone") or row.get("HmPhone") or None
        return PmsPatient(
            pat_num,
            str(row.get("FName", "")),
            str(row.get("LName", "")),
            row.get("Email") or None,
            phone,
            None if guarantor == pat_num else guarantor,
            None,
        )

    def aging(self, pat_num: str) -> Balance:
        a = self._read(f"/accountmodules/{pat_num}/Aging") or {}
        if not isinstance(a, dict):
            raise PmsUnavailable(
                f"Open Dental answered GET /accountmodules/{pat_num}/Aging with something "
                "other than an object"
            )
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


def logged(answer: Answer, method: str, path: str) -> None:
    """An answer refused: its body (the start) goes to the server's log, never into the
    error, which the practice sees (and which could otherwise show what another service
    answered, were the URL pointed at one)."""
    log.warning(
        "Open Dental answered %s on %s %s: %r (location %r)",
        answer.status,
        method,
        path,
        answer.start(),
        answer.headers.get("location", "")[:300],
    )


def parse_date(value: Any) -> date | None:
    try:
        parsed = date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None
    return None if parsed.year < 1900 else parsed


def retry_after(headers: httpx.Headers) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
