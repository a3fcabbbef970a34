from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.app import answers
from services.context import Components
from services.http.deps import ComponentsDep

router = APIRouter(tags=["health"])
log = logging.getLogger("payledger.health")

#: after a database restart each pooled connection fails once before it is replaced:
#: so many tries tell a database that is back from one that is down
TRIES = 8
#: seconds to wait for a connection of its own before saying the database is unreachable
CONNECT_TIMEOUT = 2


def read_positions(ctx: Components) -> tuple[int, dict[str, int]]:
    """The log's last position and each view's, asked of the database.

    On PostgreSQL a connection of its own is opened first (within CONNECT_TIMEOUT):
    the pool would wait for its own timeout before giving up on a server that is
    down, and a pooled connection of before a restart fails although the server is
    back. Then the pool is read, past such stale connections."""
    ctx.store.probe(CONNECT_TIMEOUT)
    for _ in range(TRIES - 1):
        try:
            return read_positions_once(ctx)
        except Exception as error:  # a connection of before a restart: try a fresh one
            log.info("health check: %s; trying again", error)
    return read_positions_once(ctx)


def read_positions_once(ctx: Components) -> tuple[int, dict[str, int]]:
    ctx.store.ping()
    position = ctx.store.last_position()
    return position, ctx.projector.positions()


@router.get(
    "/healthz",
    summary="Liveness: the database checked, and how far each view lags behind the log",
    response_model=answers.Health,
    responses={
        503: {
            "model": answers.HealthFailing,
            "description": "the database is unreachable (the reason is given)",
        }
    },
)
def healthz(ctx: ComponentsDep) -> JSONResponse:
    """200 with the log's position and each view's lag (events recorded that the view
    has not applied yet) when the database answers; 503 with the reason when it does
    not. Nothing here is cached: every call asks the database."""
    try:
        position, positions = read_positions(ctx)
    except Exception as error:  # the answer is the check
        reason = " ".join(str(error).split()) or type(error).__name__
        failing = answers.HealthFailing(
            status="failing",
            database="unreachable",
            reason=f"the database is unreachable: {reason}",
        )
        return JSONResponse(
            failing.model_dump(mode="json"),
            status_code=503,
            headers={"Retry-After": "5", "Cache-Control": "no-store"},
        )
    lag = {p.name: max(0, position - positions.get(p.name, 0)) for p in ctx.projector.projections}
    health = answers.Health.model_validate(
        {
            "status": "ok",
            "database": "postgresql" if ctx.store.is_postgres else "sqlite",
            "sandbox": ctx.settings.sandbox,
            "position": position,
            "views": {"lag": max(lag.values(), default=0), "behind": lag},
            "projections": [
                {
                    "name": state.name,
                    "role": state.role,
                    "position": state.position,
                    "lag": max(0, position - state.position),
                    "error": state.error,
                    "failures": state.failures,
                }
                for state in ctx.projector.states()
            ],
        }
    )
    return JSONResponse(health.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
