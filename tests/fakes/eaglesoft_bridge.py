"""A fake Eaglesoft bridge agent that follows docs/eaglesoft-bridge.md, with faults.

Faults (a queue, one per post): "429", "503-before-apply", "500-after-apply",
"drop-after-apply" (the connection is closed with no answer), "html-after-apply" (a
proxy's HTML page with 200).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes.opendental import DROP, PROXY_PAGE, dropping


class FakeBridge:
    def __init__(self, token: str = "bridge-token") -> None:
        self.token = token
        self.patients: set[str] = set()
        self.entries: dict[str, dict[str, Any]] = {}
        self.faults: deque[str] = deque()
        self.lock = threading.Lock()
        self.posts = 0
        self.lookups = 0
        self.app = dropping(
            Starlette(
                routes=[
                    Route("/v1/payments", self.post, methods=["POST"]),
                    Route("/v1/refund-adjustments", self.post, methods=["POST"]),
                    Route("/v1/entries/{reference}", self.lookup, methods=["GET"]),
                ]
            )
        )

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
        with self.lock:
            existing = self.entries.get(body["reference"])
            if existing is not None:
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
        return JSONResponse({"transaction_number": entry["transaction_number"]}, status_code=201)

    async def lookup(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
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
