"""Use case: the practice's security log, read by its admins and auditors.

Entries are written where the changes they record are made (services/app/accounts.py,
services/app/second_factor.py), each in the transaction of its change, and never
changed after. Here they are read newest first, a page at a time, with the names of
the people they are about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.users import ANONYMOUS, SecurityKind
from projections.base import iso, parse_iso
from projections.users import actor_names
from services.context import AccountsKept, Reading


class Needs(Reading, AccountsKept, Protocol):
    """The parts this use case is given (services/context.py)."""


#: how an entry about someone who was not signed in names them
SOMEONE = "Someone not signed in"


@dataclass(frozen=True)
class LogPage:
    items: list[dict[str, str | None]]
    #: the (at, id) of the last entry, when there may be more
    next_after: tuple[str, str] | None


def read_log(
    ctx: Needs,
    practice_id: UUID,
    *,
    kind: SecurityKind | None = None,
    user_id: UUID | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 50,
) -> LogPage:
    """A page of the practice's entries, newest first; of one kind, or about one person,
    when asked; `after` is where the page before ended."""
    rows = ctx.accounts.security_log(
        practice_id,
        kind=None if kind is None else kind.value,
        subject_id=user_id,
        before=after,
        limit=limit + 1,
    )
    more, rows = len(rows) > limit, rows[:limit]
    people = {r["actor"] for r in rows} | {
        f"user:{r['subject_id']}" for r in rows if r["subject_id"]
    }
    names = ctx.reads(actor_names, practice_id, people - {ANONYMOUS})
    items: list[dict[str, str | None]] = [
        {
            "id": r["id"],
            "at": iso(parse_iso(r["at"])),
            "kind": r["kind"],
            "actor": r["actor"],
            "actor_name": SOMEONE if r["actor"] == ANONYMOUS else names.get(r["actor"]),
            "user_id": r["subject_id"],
            "user_name": names.get(f"user:{r['subject_id']}") if r["subject_id"] else None,
            "client_address": r["client_address"],
            "detail": r["detail"],
        }
        for r in rows
    ]
    last = rows[-1] if rows else None
    return LogPage(items, (last["at"], last["id"]) if more and last else None)
