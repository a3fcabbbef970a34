"""Card readers of a practice (Stripe Terminal): list, register by code, label.

Readers live at Stripe, on the practice's connected account; the ledger keeps no copy.
A terminal payment names its reader as `terminal_id` (a `tmr_...` id).
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from adapters.processor.port import Capability, CardProcessor
from domain.errors import Conflict, InvalidValue
from services.app.practices import account_of
from services.context import Aggregates, Charging


class Needs(Aggregates, Charging, Protocol):
    """The parts these use cases are given (services/context.py)."""


class ReadersNotAvailable(Conflict):
    code = "readers-not-available"


def readers_of(ctx: Needs) -> CardProcessor:
    """The processor, when it registers card readers (409 otherwise, saying what it does
    instead)."""
    if not ctx.processor.can(Capability.READERS):
        raise ReadersNotAvailable(ctx.processor.without(Capability.READERS))
    return ctx.processor


def list_readers(ctx: Needs, practice_id: UUID) -> list[dict[str, Any]]:
    return readers_of(ctx).readers(account_of(ctx, practice_id))


def register_reader(
    ctx: Needs, practice_id: UUID, *, code: str, label: str | None, key: str | None
) -> dict[str, Any]:
    code = code.strip()
    if not code:
        raise InvalidValue(
            "the registration code is the code the reader shows on its screen",
            field="registration_code",
        )
    return readers_of(ctx).register_reader(
        account_of(ctx, practice_id), code=code, label=label, key=f"{practice_id}:{key or code}"
    )


def label_reader(ctx: Needs, practice_id: UUID, reader_id: str, label: str) -> dict[str, Any]:
    return readers_of(ctx).label_reader(account_of(ctx, practice_id), reader_id, label)
