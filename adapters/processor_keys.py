"""Each practice's own key at its card processor (Clearent's API key), sealed at rest
(adapters/sealed.py) and never in the events, nor logged, nor in an answer."""

from __future__ import annotations

import logging

from adapters.clock import now_text
from adapters.sealed import Sealer, Unreadable
from adapters.sql import Database

log = logging.getLogger("payledger.processor")


class ProcessorKeys:
    def __init__(self, db: Database, sealer: Sealer, processor: str) -> None:
        self._db = db
        self._sealer = sealer
        self.processor = processor

    def of(self, practice_id: str) -> str | None:
        """The practice's key; None when it has none, or when it cannot be opened (logged)."""
        row = self._db.query_one(
            "SELECT api_key FROM processor_keys WHERE practice_id = ? AND processor = ?",
            (practice_id, self.processor),
        )
        if row is None:
            return None
        try:
            return self._sealer.open(str(row["api_key"]))
        except Unreadable as error:
            log.error(
                "the %s key of practice %s is unreadable: %s", self.processor, practice_id, error
            )
            return None

    def keep(self, practice_id: str, key: str | None) -> None:
        """Keep the practice's key (None: forget it)."""
        with self._db.transaction() as tx:
            if key is None:
                tx.execute(
                    "DELETE FROM processor_keys WHERE practice_id = ? AND processor = ?",
                    (practice_id, self.processor),
                )
                return
            tx.execute(
                "INSERT INTO processor_keys (practice_id, processor, api_key, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (practice_id, processor) DO UPDATE SET "
                "api_key = excluded.api_key, updated_at = excluded.updated_at",
                (practice_id, self.processor, self._sealer.seal(key), now_text()),
            )
