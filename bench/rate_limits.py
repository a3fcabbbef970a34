"""The rate limiter's cost per request, beside a payment's cost in the same run.

The limiter's cost: the process CPU time (the event loop's and the syncer thread's) of
PAYLEDGER_BENCH_RATE_LIMIT_REQUESTS requests through the rate limit middleware in front of
an application that answers at once, less the same requests straight to that application;
on PostgreSQL, with the counts shared (a real token, its caller and practice budgets,
the syncer writing to the database), in one process. A payment's cost: the server time
of one `POST /v1/payments` on PostgreSQL in the HTTP figures of the same run (one uvicorn
process: its seconds per payment, the inverse of its rate). Target: under 5%.

`python -m bench.rate_limits` prints the limiter's cost alone.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from uuid import UUID

from starlette.types import Message, Receive, Scope, Send

from bench.verdicts import Check, Target
from domain.users import Role
from services.app.accounts import invite_user
from services.app.practices import Authenticator
from services.context import Components
from services.http.rate_limiter import RateLimiter
from services.http.rate_limits import Callers, RateLimitMiddleware
from services.settings import RateLimits

REQUESTS = int(os.environ.get("PAYLEDGER_BENCH_RATE_LIMIT_REQUESTS", "20000"))
RATE_LIMIT_SHARE = Target("<", 0.05, on="ratio")
#: budgets no request of the bench reaches: the limiter counts and decides, never refuses
UNREFUSING = RateLimits(
    caller_reads=10**9, caller_writes=10**9, practice_reads=10**9, practice_writes=10**9
)
UNREFUSING_ENV = {
    f"PAYLEDGER_RATE_LIMIT_{name.upper()}": str(10**9)
    for name in ("caller_reads", "caller_writes", "practice_reads", "practice_writes")
}


async def answered(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def dropped(message: Message) -> None:
    return None


def scope_of(token: str) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/payments",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "query_string": b"",
    }


def cpu_seconds(app: Any, scope: Scope, count: int) -> float:
    async def run() -> None:
        for _ in range(count):
            await app(scope, nothing, dropped)

    started = time.process_time()
    asyncio.run(run())
    return time.process_time() - started


def limiter_cost(ctx: Components, practice_id: UUID, count: int = REQUESTS) -> dict[str, float]:
    """Microseconds of process CPU the limiter adds to one request."""
    _, token = invite_user(
        ctx,
        practice_id=practice_id,
        name="Bench Limited",
        email=None,
        role=Role.ADMIN,
        password=None,
        actor="bench",
    )
    from adapters.rate_limit_counts import SharedCounts

    shared = SharedCounts(ctx.store.conninfo()) if ctx.store.is_postgres else None
    limiter = RateLimiter(UNREFUSING.window_seconds, shared, sync_seconds=UNREFUSING.sync_seconds)
    callers = Callers(ctx, Authenticator(ctx))
    limited = RateLimitMiddleware(answered, limiter=limiter, limits=UNREFUSING, callers=callers)
    scope = scope_of(token)
    try:
        cpu_seconds(limited, scope, 100)  # warm: the caller is known, the syncer running
        bare = cpu_seconds(answered, scope, count)
        with_limits = cpu_seconds(limited, scope, count)
    finally:
        limiter.close()
    return {
        "requests": count,
        "us_per_request": max(0.0, with_limits - bare) / count * 1e6,
        "bare_us_per_request": bare / count * 1e6,
    }


def rate_limit_check(cost: dict[str, float], payments_per_second: float | None) -> Check:
    """The limiter's cost beside a payment's server time (PostgreSQL, HTTP, same run)."""
    payment_us = 1e6 / payments_per_second if payments_per_second else None
    value = cost.get("us_per_request")
    share = f"{value / payment_us:.2%} of a payment; " if value is not None and payment_us else ""
    return Check(
        "rate limit cost per request",
        value,
        "µs",
        RATE_LIMIT_SHARE,
        payment_us,
        "a payment's server time, POST /v1/payments on PostgreSQL:",
        f"{share}process CPU over {int(cost.get('requests', 0)):,} requests, counts shared "
        "through PostgreSQL",
    )


def main() -> None:
    from bench.run import bench_practice, components, fresh_database

    with fresh_database() as url, components(url) as ctx:
        cost = limiter_cost(ctx, bench_practice(ctx))
    print(
        f"rate limit cost per request: {cost['us_per_request']:.1f} µs of process CPU "
        f"(a request straight to the application: {cost['bare_us_per_request']:.1f} µs)"
    )


if __name__ == "__main__":
    main()
