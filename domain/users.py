"""Users of a practice. A user holds one API token, kept only as its hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import LedgerAggregate
from domain.errors import InvalidValue


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class User(LedgerAggregate):
    class Created(LedgerAggregate.Created):
        name: str
        role: str
        token_hash: str

        def apply(self, user: User) -> None:
            user.practice_id = self.practice_id
            user.name = self.name
            user.role = Role(self.role)
            user.token_hash = self.token_hash

    if TYPE_CHECKING:
        name: str
        role: Role
        token_hash: str

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        name: str,
        role: Role,
        token_hash: str,
        at: datetime,
        actor: str,
    ) -> User:
        if not name.strip():
            raise InvalidValue("the user needs a name", field="name")
        return cls._create(
            cls.Created,
            id=id,
            practice_id=practice_id,
            name=name.strip(),
            role=role.value,
            token_hash=token_hash,
            at=at,
            actor=actor,
        )
