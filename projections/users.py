"""The practice's users as a list, and the names that history shows for its actors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict
from uuid import UUID

from adapters.sql import Database, Tx, rows_as
from domain.users import User, UserStatus
from projections.base import Projection, handles, iso
from projections.feed import FeedItem


class UserRow(TypedDict):
    """What the users list selects of a row of ``users``."""

    id: str
    name: str
    email: str | None
    role: str
    status: str
    created_at: str
    two_factor_since: str | None


class UserNameRow(TypedDict):
    id: str
    name: str


class NamedFeedItem(FeedItem):
    """A feed or history item with its actor's readable name."""

    actor_name: str


class Users(Projection):
    name = "users"
    version = 2  # the second factor's since
    tables = ("users",)
    ddl = (
        """CREATE TABLE IF NOT EXISTS users (
            id TEXT PRIMARY KEY,
            practice_id TEXT NOT NULL,
            name TEXT NOT NULL,
            email TEXT,
            role TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            two_factor_since TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS users_by_practice ON users (practice_id, created_at)",
    )

    @handles(User.Created)
    def created(self, tx: Tx, e: User.Created, position: int) -> None:
        tx.execute(
            "INSERT INTO users (id, practice_id, name, email, role, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(e.originator_id),
                str(e.practice_id),
                e.name,
                e.email,
                e.role,
                UserStatus.ACTIVE.value,
                iso(e.at),
            ),
        )

    @handles(User.RoleChanged)
    def role_changed(self, tx: Tx, e: User.RoleChanged, position: int) -> None:
        tx.execute("UPDATE users SET role = ? WHERE id = ?", (e.role, str(e.originator_id)))

    @handles(User.TwoFactorEnabled)
    def two_factor_enabled(self, tx: Tx, e: User.TwoFactorEnabled, position: int) -> None:
        tx.execute(
            "UPDATE users SET two_factor_since = ? WHERE id = ?", (iso(e.at), str(e.originator_id))
        )

    @handles(User.TwoFactorDisabled)
    def two_factor_disabled(self, tx: Tx, e: User.TwoFactorDisabled, position: int) -> None:
        tx.execute("UPDATE users SET two_factor_since = NULL WHERE id = ?", (str(e.originator_id),))

    @handles(User.Revoked)
    def revoked(self, tx: Tx, e: User.Revoked, position: int) -> None:
        tx.execute(
            "UPDATE users SET status = ? WHERE id = ?",
            (UserStatus.REVOKED.value, str(e.originator_id)),
        )


def list_users(db: Database, practice_id: UUID) -> list[UserRow]:
    rows = db.query(
        "SELECT id, name, email, role, status, created_at, two_factor_since FROM users "
        "WHERE practice_id = ? ORDER BY created_at, id",
        (str(practice_id),),
    )
    return rows_as(UserRow, rows)


def admin_ids(db: Database, practice_id: UUID) -> list[UUID]:
    """The practice's active admins as the view has them (the caller checks each)."""
    rows = db.query(
        "SELECT id FROM users WHERE practice_id = ? AND role = 'admin' AND status = 'active'",
        (str(practice_id),),
    )
    return [UUID(r["id"]) for r in rows]


#: how history names actors that are not users
ACTOR_NAMES = {"patient": "Patient", "processor": "Processor", "operator": "Operator"}


def actor_names(db: Database, practice_id: UUID, actors: Iterable[str]) -> dict[str, str]:
    """A readable name for each actor: the user's name for ``user:<id>``, else its kind."""
    wanted = set(actors)
    user_ids = [a[5:] for a in wanted if a.startswith("user:")]
    names = {f"user:{r['id']}": str(r["name"]) for r in _user_names(db, practice_id, user_ids)}
    return {actor: names.get(actor) or kind_name(actor) for actor in wanted}


def _user_names(db: Database, practice_id: UUID, user_ids: list[str]) -> list[UserNameRow]:
    if not user_ids:
        return []
    marks = ", ".join("?" for _ in user_ids)
    rows = db.query(
        f"SELECT id, name FROM users WHERE practice_id = ? AND id IN ({marks})",  # noqa: S608
        (str(practice_id), *user_ids),
    )
    return rows_as(UserNameRow, rows)


def kind_name(actor: str) -> str:
    kind = actor.split(":", 1)[0]
    if kind == "user":
        return "Unknown user"
    if kind == "system":
        return "System"
    return ACTOR_NAMES.get(kind, actor)


def with_actor_names(
    db: Database, practice_id: UUID, items: Sequence[FeedItem]
) -> list[NamedFeedItem]:
    """Feed or history items with `actor_name` beside `actor`."""
    names = actor_names(db, practice_id, (item["actor"] for item in items))
    return [{**item, "actor_name": names[item["actor"]]} for item in items]
