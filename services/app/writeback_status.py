"""What the PMS writeback has done, as the API and the pages show it: each payment's
attempts, a practice's status, and whether a practice's payments are written back at all.
Reads only: the work itself is the writeback worker's (services/workers/writeback.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.pms.journal import Journal

#: the PMSs a practice's payments are written to automatically (when it asks for it)
AUTOMATIC_KINDS = ("opendental", "eaglesoft")


def writes_back_automatically(pms: str, auto_writeback: bool) -> bool:
    """Whether the intake makes a writeback entry for a practice's new payment."""
    return auto_writeback and pms in AUTOMATIC_KINDS


def writeback_of_payment(journal: Journal, payment_id: UUID) -> list[dict[str, Any]]:
    return writeback_of_payments(journal, [payment_id]).get(payment_id, [])


def writeback_of_payments(
    journal: Journal, payment_ids: list[UUID]
) -> dict[UUID, list[dict[str, Any]]]:
    """Each payment's writeback attempts (one query for all of them)."""
    rows = journal.of_payments([str(p) for p in payment_ids])
    return {
        payment_id: [
            {
                "id": r["id"],
                "kind": r["kind"],
                "status": r["status"],
                "attempts": int(r["attempts"]),
                "last_error": r["last_error"],
                "pms_reference": r["pms_reference"],
                "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
            }
            for r in rows.get(str(payment_id), [])
        ]
        for payment_id in payment_ids
    }


def practice_status(journal: Journal, practice_id: UUID) -> dict[str, Any]:
    """`failing` from the first refused or failed write until a write succeeds (or while a
    write has failed for good), with the last error and since when; counts by status."""
    counts = journal.summary(str(practice_id))
    state = journal.status(str(practice_id))
    failing = bool(state.get("failing_since")) or bool(counts.get("failed"))
    return {
        "status": "failing" if failing else "ok",
        "failing_since": (state.get("failing_since") or state.get("last_error_at"))
        if failing
        else None,
        "last_error": state.get("last_error") if failing else None,
        "last_error_at": state.get("last_error_at"),
        "last_success_at": state.get("last_success_at"),
        **counts,
    }
