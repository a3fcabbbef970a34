from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.api.deps import LedgerDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness, with the database checked")
def healthz(ledger: LedgerDep) -> Any:
    try:
        ledger.db.query("SELECT 1 AS ok")
        position = ledger.store.recorder.max_notification_id() or 0
    except Exception as error:  # the answer is the check
        return JSONResponse({"status": "failing", "database": str(error)}, status_code=503)
    return {
        "status": "ok",
        "database": "postgresql" if ledger.db.postgres else "sqlite",
        "sandbox": ledger.settings.sandbox,
        "position": position,
        "projections": [
            {
                "name": state.name,
                "role": state.role,
                "position": state.position,
                "lag": max(0, position - state.position),
                "error": state.error,
                "failures": state.failures,
            }
            for state in ledger.projector.states()
        ],
    }
