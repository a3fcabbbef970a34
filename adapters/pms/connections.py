"""Each practice's PMS connection settings (its URLs and keys: secrets, kept here and
never in the events), one JSON document per practice, sealed at rest when given a
sealer (adapters/sealed.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

from adapters.clock import now_text
from adapters.pms.addresses import AllowedHosts
from adapters.sealed import Sealer, Unreadable
from adapters.sql import Database

log = logging.getLogger("payledger.writeback")


class PmsConnections:
    def __init__(
        self, db: Database, sealer: Sealer | None = None, allowed: AllowedHosts | None = None
    ) -> None:
        """With a sealer, the settings are kept sealed (and any kept in clear by an older
        version are sealed now). `allowed`: the hosts the operator lets the connections
        reach even at private addresses (PAYLEDGER_PMS_ALLOWED_HOSTS)."""
        self._db = db
        self._sealer = sealer
        self.allowed = allowed or AllowedHosts()
        if sealer is not None:
            self._seal_existing(sealer)

    def _seal_existing(self, sealer: Sealer) -> None:
        for row in self._db.query("SELECT practice_id, config FROM pms_connections"):
            if not sealer.is_sealed(str(row["config"])):
                self.keep(str(row["practice_id"]), json.loads(row["config"]))

    def of(self, practice_id: str) -> dict[str, Any]:
        """The practice's settings by PMS kind (``{"opendental": {...}}``); empty when it
        has none, or when they cannot be opened (logged)."""
        row = self._db.query_one(
            "SELECT config FROM pms_connections WHERE practice_id = ?", (practice_id,)
        )
        if row is None:
            return {}
        text = str(row["config"])
        if self._sealer is not None:
            try:
                text = self._sealer.open(text)
            except Unreadable as error:
                log.error("the PMS connection of practice %s is unreadable: %s", practice_id, error)
                return {}
        config: dict[str, Any] = json.loads(text)
        return config

    def keep(self, practice_id: str, config: dict[str, Any]) -> None:
        """Keep the practice's settings (all of them: they replace what was kept)."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO pms_connections (practice_id, config, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (practice_id) DO UPDATE SET config = excluded.config, "
                "updated_at = excluded.updated_at",
                (practice_id, self._stored(config), now_text()),
            )

    def _stored(self, config: dict[str, Any]) -> str:
        text = json.dumps(config)
        return self._sealer.seal(text) if self._sealer is not None else text
