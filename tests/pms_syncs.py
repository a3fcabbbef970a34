"""Waiting for a PMS sync that runs in the background (POST /v1/pms/sync and the
scheduled sync answer at once; the tests read what the sync did once it ended)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.app.receivables import SYNCS
from tests.conftest import Api

#: generous for a loaded 2-core machine
WAIT = 120.0


def ended(api: Api, seconds: float = WAIT) -> dict[str, Any]:
    """Wait until the practice's sync here has ended; its status (GET /v1/pms/sync)."""
    assert SYNCS.wait(UUID(api.practice_id), seconds), f"the sync still runs after {seconds} s"
    answer = api.get("/v1/pms/sync")
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    assert status["outcome"] in ("ok", "failed"), status
    return status


def sync(api: Api, seconds: float = WAIT) -> dict[str, Any]:
    """Start a sync (202 at once) and wait until it has ended; its status."""
    started = api.post("/v1/pms/sync")
    assert started.status_code == 202, started.text
    return ended(api, seconds)
