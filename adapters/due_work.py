"""Each practice's due work, as last run: failing or not, failures in a row and in all,
the last error. Written by the due-work runner (services/app/due.py), read on the
practice and by /metrics."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sql import Database


@dataclass(frozen=True)
class DueWorkRow:
    practice_id: str
    failing: bool
    consecutive: int
    failures: int
    last_error: str | None
    failed_at: str | None


@dataclass(frozen=True)
class DueWorkTotals:
    """Over all practices: how many are failing now, how many runs failed in all."""

    failing: int
    failures: int


class DueWorkStatus:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_failure(self, practice_id: str, error: str, at: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO due_work_status "
                "(practice_id, failing, consecutive, failures, last_error, failed_at) "
                "VALUES (?, 1, 1, 1, ?, ?) ON CONFLICT (practice_id) DO UPDATE SET failing = 1, "
                "consecutive = due_work_status.consecutive + 1, "
                "failures = due_work_status.failures + 1, "
                "last_error = excluded.last_error, failed_at = excluded.failed_at",
                (practice_id, error, at),
            )

    def record_success(self, practice_id: str) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE due_work_status SET failing = 0, consecutive = 0 "
                "WHERE practice_id = ? AND failing = 1",
                (practice_id,),
            )

    def of_practice(self, practice_id: str) -> DueWorkRow | None:
        row = self._db.query_one(
            "SELECT practice_id, failing, consecutive, failures, last_error, failed_at "
            "FROM due_work_status WHERE practice_id = ?",
            (practice_id,),
        )
        if row is None:
            return None
        return DueWorkRow(
            practice_id=row["practice_id"],
            failing=bool(row["failing"]),
            consecutive=int(row["consecutive"]),
            failures=int(row["failures"]),
            last_error=row["last_error"],
            failed_at=row["failed_at"],
        )

    def totals(self) -> DueWorkTotals:
        row = self._db.query_one(
            "SELECT COALESCE(SUM(failing), 0) AS failing, COALESCE(SUM(failures), 0) AS failures "
            "FROM due_work_status"
        )
        return (
            DueWorkTotals(int(row["failing"]), int(row["failures"])) if row else DueWorkTotals(0, 0)
        )
