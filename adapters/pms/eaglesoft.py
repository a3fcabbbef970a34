"""Eaglesoft through the office bridge agent (docs/eaglesoft-bridge.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from adapters.pms.addresses import AllowedHosts
from adapters.pms.http import Answer, BoundedHttp, CallFailed, NotJson
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter, Written


@dataclass(frozen=True)
class BridgeSettings:
    bridge_url: str
    token: str
    timeout: float = 30.0
    #: hosts the operator lets calls reach even at private addresses (adapters/pms/addresses.py)
    allowed: AllowedHosts = field(default_factory=AllowedHosts)

    def __repr__(self) -> str:
        return f"BridgeSettings(bridge_url={self.bridge_url!r}, token=***)"


log = logging.getLogger("payledger.pms")


class EaglesoftBridge(PmsWriter):
    lookup_by_day = False  # GET /v1/entries/{reference}

    def __init__(self, settings: BridgeSettings, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._http = BoundedHttp(
            settings.timeout, client, name="the Eaglesoft bridge", allowed=settings.allowed
        )
        self.call_seconds = settings.timeout
        self._headers = {"Authorization": f"Bearer {settings.token}"}

    def _call(self, method: str, path: str, body: Any = None, *, writes: bool) -> Answer:
        """The bridge's answer (2xx or 4xx); PmsWriteError for what leaves a write's
        outcome unknown (a timeout, a dropped connection, a 5xx, a redirect) and 429."""
        url = self._settings.bridge_url.rstrip("/") + path
        try:
            answer = self._http.request(method, url, json=body, headers=self._headers)
        except CallFailed as error:
            raise PmsWriteError(
                str(error), retryable=True, outcome_unknown=writes and error.sent
            ) from error
        if answer.status == 429:
            try:
                wait = max(0.0, float(answer.headers.get("Retry-After", "1")))
            except ValueError:
                wait = 1.0
            raise PmsWriteError(
                "the Eaglesoft bridge is throttling (429)", retryable=True, retry_after=wait
            )
        if answer.status >= 500 or answer.status < 200 or 300 <= answer.status < 400:
            log.warning(
                "the Eaglesoft bridge answered %s on %s %s: %r (location %r)",
                answer.status,
                method,
                path,
                answer.start(),
                answer.headers.get("location", "")[:300],
            )
            raise PmsWriteError(
                f"the Eaglesoft bridge answered {answer.status} on {method} {path}",
                retryable=True,
                outcome_unknown=writes,
            )
        return answer

    def _transaction(self, answer: Answer, call: str, *, writes: bool) -> Written:
        """The entry's transaction number from a 200/201 answer; a body without it
        (an HTML page, cut-off JSON) leaves a write's outcome unknown."""
        try:
            body = answer.json()
            number = body["transaction_number"]
        except (NotJson, KeyError, TypeError) as error:
            raise PmsWriteError(
                f"the Eaglesoft bridge answered {call} without a transaction number ({error})",
                retryable=True,
                outcome_unknown=writes,
            ) from error
        return Written(f"Eaglesoft tran {number}")

    def post_entry(self, entry: PmsEntry) -> Written:
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
        answer = self._call("POST", path, body, writes=True)
        if answer.status in (200, 201):
            return self._transaction(answer, f"POST {path}", writes=True)
        # the body goes to the server's log only, never into the error the practice sees
        log.warning(
            "the Eaglesoft bridge answered %s on POST %s: %r", answer.status, path, answer.start()
        )
        raise PmsWriteError(
            f"the Eaglesoft bridge refused ({answer.status}) on POST {path}"
            + (": check the bridge's token" if answer.status == 401 else ""),
            retryable=answer.status == 401,
        )

    def find_entry(self, entry: PmsEntry) -> Written | None:
        answer = self._call("GET", f"/v1/entries/{entry.marker}", writes=False)
        if answer.status == 404:
            try:
                answer.json()
            except NotJson as error:  # not the bridge's answer: a proxy's page
                raise PmsWriteError(
                    f"the Eaglesoft bridge's lookup answered 404 with {error}", retryable=True
                ) from error
            return None
        if answer.status != 200:
            raise PmsWriteError(
                f"the Eaglesoft bridge lookup failed ({answer.status})", retryable=True
            )
        return self._transaction(answer, "GET /v1/entries", writes=False)

    def post_commlog(self, commlog: Commlog) -> Written | None:
        return None  # protocol v1 has no communication log
