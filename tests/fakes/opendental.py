"""A strict fake of the documented subset of Open Dental's REST API, with faults to inject.

Follows ../shared/reference/pms.md: the ODFHIR auth header, PascalCase fields,
numbers returned as strings, 201 with the object on POST /payments, 400 with an
explanation, 404 for an unknown patient, GET /payments?PatNum=&DateEntry=,
POST /commlogs, GET /accountmodules/{PatNum}/Aging, GET /patients (Limit/Offset).

Faults (a queue, one per write call): "429" (Retry-After: 1), "500-after-apply",
"504-after-apply", "timeout-after-apply" (answers after the client gave up),
"drop-after-apply" (the connection is closed with no answer), "html-after-apply"
(a proxy's HTML page with 200), "truncated-after-apply" (201 with cut-off JSON),
"500-before-apply", "400", "hang-before-apply" (no answer for `timeout_sleep` seconds,
then a 500: nothing applied), "apply-late" (applied `timeout_sleep` seconds after the
request came, when the client has given up). Commlogs have their own queue,
`commlog_faults`, with the same faults.

Read faults (a queue, one per GET): "html-200" (a proxy's error page with 200),
"truncated-json", "redirect" (302 to a sign-in page), "huge" (a page of 6 MB),
"endless" (a page that never ends), "hang" (no answer for `timeout_sleep` seconds),
"500", "drop" (GET /payments and GET /commlogs only: the connection closed unanswered).

`in_flight` counts the requests being handled (an answer sent late, an entry applied
late), and its `peak` the most at once; `settle()` waits until there are none.

Load: `latency` delays every answer by that many seconds (an API over the internet);
`most_at_once` answers 429 (Retry-After: `retry_after`) to a request beyond that many
under way (Open Dental's throttling); `broken_aging` holds the PatNums whose aging
answers 500 (an office's API failing in the middle of a sync).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

PROXY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
DROP = "fake.drop"


def dropping(app: Any) -> Any:
    """The app, able to close a connection with no answer: a handler that sets
    scope[DROP] has its answer thrown away and the connection closed (the server's
    transport, reached through uvicorn's `send`)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def guarded(message: Message) -> None:
            if scope.get(DROP):
                transport = getattr(getattr(send, "__self__", None), "transport", None)
                if transport is None:
                    raise RuntimeError("this server gives no transport to close")
                transport.close()
                return
            await send(message)

        await app(scope, receive, guarded)

    return asgi


async def read_fault(fault: str | None, sleep: float) -> Response | None:
    """What a troubled Open Dental (or what stands in front of it) answers a GET."""
    if fault == "html-200":
        return HTMLResponse(PROXY_PAGE, status_code=200)
    if fault == "truncated-json":
        return Response('[{"PatNum": "10', media_type="application/json")
    if fault == "redirect":
        return RedirectResponse("https://sign-in.example.com/?next=/api/v1", status_code=302)
    if fault == "huge":
        chunk = b'{"PatNum": "1", "FName": "' + b"x" * 65000 + b'"},'

        async def huge() -> Any:
            yield b"["
            for _ in range(100):
                yield chunk
            yield b'{"PatNum": "2"}]'

        return StreamingResponse(huge(), media_type="application/json")
    if fault == "endless":

        async def endless() -> Any:
            yield b"["
            while True:
                await asyncio.sleep(0.01)
                yield b" "

        return StreamingResponse(endless(), media_type="application/json")
    if fault == "hang":
        await asyncio.sleep(sleep)
    if fault == "500":
        return JSONResponse("Internal error.", status_code=500)
    return None


class InFlight:
    """Counts the requests an app is handling, answered or not (a handler may go on after
    the client gave up: an answer sent late, an entry applied late)."""

    def __init__(self) -> None:
        self.count = 0
        self.peak = 0
        self.lock = threading.Lock()

    def wrap(self, app: Any) -> Any:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # the server's lifespan lasts as long as it runs
                await app(scope, receive, send)
                return
            with self.lock:
                self.count += 1
                self.peak = max(self.peak, self.count)
            try:
                await app(scope, receive, send)
            finally:
                with self.lock:
                    self.count -= 1

        return asgi

    def settle(self, seconds: float = 10.0) -> None:
        """Wait until no request is being handled."""
        deadline = time.monotonic() + seconds
        while self.count:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake is still handling requests")
            time.sleep(0.005)


MODES = {"None", "Email", "Mail", "Phone", "In Person", "Text", "Email and Text", "Phone and Text"}


class FakeOpenDental:
    def __init__(self, developer_key: str = "dev-key", customer_key: str = "cust-key") -> None:
        self.auth = f"ODFHIR {developer_key}/{customer_key}"
        self.patients: dict[int, dict[str, Any]] = {}
        self.payments: list[dict[str, Any]] = []
        self.commlogs: list[dict[str, Any]] = []
        self.faults: deque[str] = deque()
        self.commlog_faults: deque[str] = deque()
        self.read_faults: deque[str] = deque()
        self.timeout_sleep = 2.0
        self.lock = threading.Lock()
        self.calls = 0
        self.reads = 0
        self.latency = 0.0
        self.most_at_once: int | None = None
        self.retry_after = "1"
        self.throttled = 0
        self.broken_aging: set[int] = set()
        self.aging_reads = 0
        self.in_flight = InFlight()
        self.app = self.in_flight.wrap(self.loaded(dropping(self.starlette())))

    def loaded(self, app: Any) -> Any:
        """The app, answering `latency` late, and 429 beyond `most_at_once` at once."""

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                if self.most_at_once is not None and self.in_flight.count > self.most_at_once:
                    with self.lock:
                        self.throttled += 1
                    throttled = JSONResponse(
                        "Too many requests.",
                        status_code=429,
                        headers={"Retry-After": self.retry_after},
                    )
                    await throttled(scope, receive, send)
                    return
                if self.latency:
                    await asyncio.sleep(self.latency)
            await app(scope, receive, send)

        return asgi

    def settle(self, seconds: float = 10.0) -> None:
        """Wait until no request is being handled (late answers sent, late entries in)."""
        self.in_flight.settle(seconds)

    def starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/payments", self.post_payment, methods=["POST"]),
                Route("/api/v1/payments", self.get_payments, methods=["GET"]),
                Route("/api/v1/commlogs", self.post_commlog, methods=["POST"]),
                Route("/api/v1/commlogs", self.get_commlogs, methods=["GET"]),
                Route("/api/v1/accountmodules/{pat_num:int}/Aging", self.aging, methods=["GET"]),
                Route("/api/v1/patients", self.list_patients, methods=["GET"]),
            ]
        )

    def add_patient(
        self,
        pat_num: int,
        first: str = "Pat",
        last: str = "Ent",
        guarantor: int | None = None,
        aging: dict[str, Any] | None = None,
    ) -> None:
        self.patients[pat_num] = {
            "PatNum": pat_num,
            "FName": first,
            "LName": last,
            "Guarantor": guarantor or pat_num,
            "aging": aging or {},
        }

    def unauthorised(self, request: Request) -> JSONResponse | None:
        if request.headers.get("Authorization") != self.auth:
            return JSONResponse("Invalid authorization header.", status_code=401)
        return None

    async def post_payment(self, request: Request) -> Response:
        if (refused := self.unauthorised(request)) is not None:
            return refused
        self.calls += 1
        fault = self.faults.popleft() if self.faults else None
        if fault == "429":
            return JSONResponse("Too many requests.", status_code=429, headers={"Retry-After": "1"})
        if fault in ("500-before-apply", "400"):
            return JSONResponse(
                "Bad request." if fault == "400" else "Internal error.",
                status_code=400 if fault == "400" else 500,
            )
        if fault == "hang-before-apply":
            await asyncio.sleep(self.timeout_sleep)
            return JSONResponse("Internal error.", status_code=500)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse("Body is not valid JSON.", status_code=400)
        error = self.check_payment(body)
        if error:
            status = 404 if error.startswith("Patient") else 400
            return JSONResponse(error, status_code=status)
        if fault == "apply-late":
            await asyncio.sleep(self.timeout_sleep)
        with self.lock:
            row = {
                "PayNum": str(1000 + len(self.payments)),
                "PayType": str(body.get("PayType", 0)),
                "PayDate": body.get("PayDate", datetime.now(UTC).date().isoformat()),
                "PayAmt": str(Decimal(str(body["PayAmt"]))),
                "CheckNum": "",
                "PayNote": body.get("PayNote", ""),
                "PatNum": str(body["PatNum"]),
                "ClinicNum": "0",
                "DateEntry": datetime.now(UTC).date().isoformat(),
                "DepositNum": "0",
                "PaymentSource": "API",
                "ProcessStatus": "OfficeProcessed",
                "isPatientPreferred": body.get("isPatientPreferred", "false"),
            }
            self.payments.append(row)
        if (troubled := await self.after_apply(request, fault)) is not None:
            return troubled
        return JSONResponse(
            {k: v for k, v in row.items() if k != "isPatientPreferred"}, status_code=201
        )

    def check_payment(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Body must be a JSON object."
        for name in ("PayAmt", "PatNum"):
            if name not in body:
                return f"{name} is required."
        lower = [k for k in body if k[0].islower() and k != "isPatientPreferred"]
        if lower:
            return f"Unknown fields: {', '.join(lower)}."
        try:
            amount = Decimal(str(body["PayAmt"]))
        except InvalidOperation:
            return "PayAmt is not a number."
        if amount == 0:
            return "PayAmt cannot be zero."
        if "PayType" in body and not isinstance(body["PayType"], int):
            return "PayType must be a definition number."
        if len(str(body.get("PayNote", ""))) > 4000:
            return "PayNote is too long."
        if body.get("isPatientPreferred", "false") not in ("true", "false"):
            return "isPatientPreferred must be 'true' or 'false'."
        if int(body["PatNum"]) not in self.patients:
            return "Patient not found."
        return None

    async def get_payments(self, request: Request) -> Response:
        if (refused := self.unauthorised(request)) is not None:
            return refused
        fault = self.read_faults.popleft() if self.read_faults else None
        if (troubled := await read_fault(fault, self.timeout_sleep)) is not None:
            return troubled
        if fault == "drop":
            request.scope[DROP] = True
            return JSONResponse([])
        self.reads += 1
        pat, entered = request.query_params.get("PatNum"), request.query_params.get("DateEntry")
        rows = [
            p
            for p in self.payments
            if (pat is None or p["PatNum"] == pat)
            and (entered is None or p["DateEntry"] == entered)
        ]
        return JSONResponse(
            [{k: v for k, v in r.items() if k != "isPatientPreferred"} for r in rows]
        )

    async def post_commlog(self, request: Request) -> Response:
        if (refused := self.unauthorised(request)) is not None:
            return refused
        fault = self.commlog_faults.popleft() if self.commlog_faults else None
        if fault == "429":
            return JSONResponse("Too many requests.", status_code=429, headers={"Retry-After": "1"})
        if fault in ("500-before-apply", "400"):
            return JSONResponse(
                "Bad request." if fault == "400" else "Internal error.",
                status_code=400 if fault == "400" else 500,
            )
        if fault == "hang-before-apply":
            await asyncio.sleep(self.timeout_sleep)
            return JSONResponse("Internal error.", status_code=500)
        body = await request.json()
        for name in ("PatNum", "Note"):
            if name not in body:
                return JSONResponse(f"{name} is required.", status_code=400)
        if body.get("Mode_", "None") not in MODES:
            return JSONResponse("Mode_ is invalid.", status_code=400)
        if body.get("SentOrReceived", "Neither") not in ("Neither", "Sent", "Received"):
            return JSONResponse("SentOrReceived is invalid.", status_code=400)
        if int(body["PatNum"]) not in self.patients:
            return JSONResponse("Patient not found.", status_code=404)
        if fault == "apply-late":
            await asyncio.sleep(self.timeout_sleep)
        with self.lock:
            row = {"CommlogNum": str(500 + len(self.commlogs)), **body}
            self.commlogs.append(row)
        if (troubled := await self.after_apply(request, fault)) is not None:
            return troubled
        return JSONResponse(row, status_code=201)

    async def after_apply(self, request: Request, fault: str | None) -> Response | None:
        """What an applied write answers under a fault (None: its normal answer)."""
        if fault == "500-after-apply":
            return JSONResponse("Internal error.", status_code=500)
        if fault == "504-after-apply":
            return JSONResponse("Gateway timeout.", status_code=504)
        if fault == "timeout-after-apply":
            await asyncio.sleep(self.timeout_sleep)
        if fault == "drop-after-apply":
            request.scope[DROP] = True
        if fault == "html-after-apply":
            return HTMLResponse(PROXY_PAGE, status_code=200)
        if fault == "truncated-after-apply":
            return Response('{"PayNum": "1', status_code=201, media_type="application/json")
        return None

    async def get_commlogs(self, request: Request) -> Response:
        """GET /commlogs?PatNum=: the patient's communication log."""
        if (refused := self.unauthorised(request)) is not None:
            return refused
        fault = self.read_faults.popleft() if self.read_faults else None
        if (troubled := await read_fault(fault, self.timeout_sleep)) is not None:
            return troubled
        if fault == "drop":
            request.scope[DROP] = True
            return JSONResponse([])
        self.reads += 1
        pat = request.query_params.get("PatNum")
        return JSONResponse([c for c in self.commlogs if pat is None or str(c["PatNum"]) == pat])

    async def aging(self, request: Request) -> Response:
        if (refused := self.unauthorised(request)) is not None:
            return refused
        fault = self.read_faults.popleft() if self.read_faults else None
        if (troubled := await read_fault(fault, self.timeout_sleep)) is not None:
            return troubled
        pat_num = request.path_params["pat_num"]
        if pat_num in self.broken_aging:
            return JSONResponse("Internal error.", status_code=500)
        patient = self.patients.get(pat_num)
        if patient is None:
            return JSONResponse("Patient not found.", status_code=404)
        with self.lock:
            self.aging_reads += 1
        return JSONResponse({k: str(v) for k, v in patient["aging"].items()})

    async def list_patients(self, request: Request) -> Response:
        if (refused := self.unauthorised(request)) is not None:
            return refused
        fault = self.read_faults.popleft() if self.read_faults else None
        if (troubled := await read_fault(fault, self.timeout_sleep)) is not None:
            return troubled
        limit = min(100, int(request.query_params.get("Limit", 100)))
        offset = int(request.query_params.get("Offset", 0))
        rows = sorted(self.patients.values(), key=lambda p: p["PatNum"])[offset : offset + limit]
        return JSONResponse([{k: str(v) for k, v in r.items() if k != "aging"} for r in rows])

    def commlog_markers(self) -> list[str]:
        return [c["Note"].rsplit("[ref:", 1)[1].rstrip("]") for c in self.commlogs]

    def paid_markers(self) -> list[str]:
        return [p["PayNote"].rsplit("[ref:", 1)[1].rstrip("]") for p in self.payments]


class Served:
    """Run an ASGI app on a free loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the fake server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@contextmanager
def serving(pat_nums: Iterable[int]) -> Iterator[tuple[FakeOpenDental, str]]:
    """A fake with these patients, served; yields it and its API base URL."""
    fake = FakeOpenDental()
    for pat_num in pat_nums:
        fake.add_patient(pat_num)
    with Served(fake.app) as url:
        yield fake, f"{url}/api/v1"
