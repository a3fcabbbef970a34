"""A fake Eaglesoft bridge agent that follows docs/eaglesoft-bridge.md, with faults.

Faults (a queue, one per post): "429", "400", "503-before-apply", "500-after-apply",
"drop-after-apply" (the connection is closed with no answer), "html-after-apply" (a
proxy's HTML page with 200), "timeout-after-apply" (answers after `timeout_sleep`
seconds, when the client has given up), "hang-before-apply" (no answer for
`timeout_sleep` seconds, then a 503: nothing applied), "apply-late" (applied
`timeout_sleep` seconds after the request came).

Read faults (a queue, one per look-up): "html-200", "redirect", "hang", "500" (as
tests/fakes/opendental.py's), "drop" (the connection closed unanswered).

`reposts` counts the posts of a reference the bridge had already (answered 200, nothing
new written); `in_flight` the requests being handled, `settle()` waits for none.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.opendental import DROP, PROXY_PAGE, InFlight, dropping, read_fault


class FakeBridge:
    def __init__(self, token: str = "bridge-token") -> None:
        self.token = token
        self.patients: set[str] = set()
        self.entries: dict[str, dict[str, Any]] = {}
        self.faults: deque[str] = deque()
        self.read_faults: deque[str] = deque()
        self.timeout_sleep = 2.0
        self.lock = threading.Lock()
        self.posts = 0
        self.lookups = 0
        self.reposts: Counter[str] = Counter()
        self.in_flight = InFlight()
        self.app = self.in_flight.wrap(
            dropping(
                Starlette(
                    routes=[
                        Route("/v1/payments", self.post, methods=["POST"]),
                        Route("/v1/refund-adjustments", self.post, methods=["POST"]),
                        Route("/v1/entries/{reference}", self.lookup, methods=["GET"]),
                    ]
                )
            )
        )

    def settle(self, seconds: float = 10.0) -> None:
        """Wait until no request is being handled (late answers sent, late entries in)."""
        self.in_flight.settle(seconds)

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return Response(status_code=401)
        return None

    async def post(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        self.posts += 1
        fault = self.faults.popleft() if self.faults else None
        if fault == "429":
            return JSONResponse({"error": "busy"}, status_code=429, headers={"Retry-After": "1"})
        if fault == "503-before-apply":
            return JSONResponse({"error": "Eaglesoft not running"}, status_code=503)
        if fault == "400":
            return JSONResponse({"error": "bad request: refused"}, status_code=400)
        if fault == "hang-before-apply":
            await asyncio.sleep(self.timeout_sleep)
            return JSONResponse({"error": "Eaglesoft not running"}, status_code=503)
        body = await request.json()
        kind = "payment" if request.url.path.endswith("/payments") else "refund"
        required = ["reference", "patient_id", "amount", "date", "note"]
        if kind == "refund":
            required.append("original_reference")
        missing = [f for f in required if body.get(f) in (None, "")]
        if missing or not isinstance(body["amount"], int) or body["amount"] <= 0:
            return JSONResponse({"error": f"bad request: {missing or 'amount'}"}, status_code=400)
        if body["patient_id"] not in self.patients:
            return JSONResponse({"error": "unknown patient"}, status_code=404)
        if fault == "apply-late":
            await asyncio.sleep(self.timeout_sleep)
        with self.lock:
            existing = self.entries.get(body["reference"])
            if existing is not None:
                self.reposts[body["reference"]] += 1
                return JSONResponse(
                    {"transaction_number": existing["transaction_number"]}, status_code=200
                )
            entry = {**body, "kind": kind, "transaction_number": str(88000 + len(self.entries))}
            self.entries[body["reference"]] = entry
        if fault == "500-after-apply":
            return JSONResponse({"error": "internal"}, status_code=500)
        if fault == "drop-after-apply":
            request.scope[DROP] = True
        if fault == "html-after-apply":
            return HTMLResponse(PROXY_PAGE, status_code=200)
        if fault == "timeout-after-apply":
            await asyncio.sleep(self.timeout_sleep)
        return JSONResponse({"transaction_number": entry["transaction_number"]}, status_code=201)

    async def lookup(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        fault = self.read_faults.popleft() if self.read_faults else None
        if (troubled := await read_fault(fault, self.timeout_sleep)) is not None:
            return troubled
        if fault == "drop":
            request.scope[DROP] = True
            return JSONResponse({"error": "not found"}, status_code=404)
        self.lookups += 1
        entry = self.entries.get(request.path_params["reference"])
        if entry is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "reference": entry["reference"],
                "kind": entry["kind"],
                "transaction_number": entry["transaction_number"],
            }
        )
