"""The writeback intake as a projection: the embedded default's transport (without
Kafka), which takes the ordered log into the writeback journal and is tracked like a
projection (the journal's rows and the position commit in one transaction). What each
event owes a PMS is the writeback's to say (services/workers/writeback.py), given here
as ``take_in``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.pms.journal import JournalIntake
from adapters.sql import Tx
from projections.base import Projection


class WritebackIntake(Projection):
    name = "writeback_intake"
    role = "intake"
    tables = ()  # the journal is never dropped: replaying it is harmless (rows are keyed)
    ddl = ()  # the journal is a durable table: adapters/migrations/

    def __init__(self, take_in: Callable[[JournalIntake, Any, int], None]) -> None:
        self._take_in = take_in

    def process(self, tx: Tx, event: Any, position: int) -> None:
        self._take_in(JournalIntake(tx), event, position)
