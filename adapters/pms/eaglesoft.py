"""Eaglesoft through the office bridge agent (docs/eaglesoft-bridge.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from adapters.pms.port import Commlog, LedgerEntry, PmsWriteError, PmsWriter, Written


@dataclass(frozen=True)
class BridgeSettings:
    bridge_url: str
    token: str
    timeout: float = 30.0

    def __repr__(self) -> str:
        return f"BridgeSettings(bridge_url={self.bridge_url!r}, token=***)"


class EaglesoftBridge(PmsWriter):
    def __init__(self, settings: BridgeSettings, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.Client(timeout=settings.timeout)
        self._headers = {"Authorization": f"Bearer {settings.token}"}

    def _call(self, method: str, path: str, body: Any = None, *, writes: bool) -> httpx.Response:
        url = self._settings.bridge_url.rstrip("/") + path
        try:
            response = self._client.request(method, url, json=body, headers=self._headers)
        except httpx.TimeoutException as error:
            raise PmsWriteError(
                f"the Eaglesoft bridge timed out on {path}", retryable=True, outcome_unknown=writes
            ) from error
        except httpx.HTTPError as error:
            raise PmsWriteError(
                f"the Eaglesoft bridge is unreachable: {type(error).__name__}", retryable=True
            ) from error
        if response.status_code == 429:
            try:
                wait = float(response.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            raise PmsWriteError(
                "the Eaglesoft bridge is throttling (429)", retryable=True, retry_after=wait
            )
        if response.status_code >= 500:
            raise PmsWriteError(
                f"the Eaglesoft bridge answered {response.status_code}",
                retryable=True,
                outcome_unknown=writes,
            )
        return response

    def post_entry(self, entry: LedgerEntry) -> Written:
        body: dict[str, Any] = {
            "reference": entry.marker,
            "patient_id": entry.pms_patient_id,
            "amount": abs(entry.amount),
            "date": entry.pay_date.isoformat(),
            "note": f"{entry.note} {entry.tag}",
        }
        if entry.amount >= 0:
            body["paytype_id"] = entry.pay_type
            path = "/v1/payments"
        else:
            body["original_reference"] = entry.original_marker
            path = "/v1/refund-adjustments"
        response = self._call("POST", path, body, writes=True)
        if response.status_code in (200, 201):
            return Written(f"Eaglesoft tran {response.json()['transaction_number']}")
        raise PmsWriteError(
            f"the Eaglesoft bridge refused ({response.status_code}): {response.text[:300]}",
            retryable=response.status_code == 401,
        )

    def find_entry(self, entry: LedgerEntry) -> Written | None:
        response = self._call("GET", f"/v1/entries/{entry.marker}", writes=False)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PmsWriteError(
                f"the Eaglesoft bridge lookup failed ({response.status_code})", retryable=True
            )
        return Written(f"Eaglesoft tran {response.json()['transaction_number']}")

    def post_commlog(self, commlog: Commlog) -> Written | None:
        return None  # protocol v1 has no communication log
