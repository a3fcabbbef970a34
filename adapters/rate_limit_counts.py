"""The rate limits' counts shared by the API processes on one PostgreSQL database.

Each process adds what it counted since its last sync to each bucket's window in one
statement, and reads back every total it touched (services/http/rate_limiter.py decides
with them). The statement runs on a connection of its own, in autocommit, so a sync
never waits for nor holds one of the event store's connections. Rows are locked in key
order (the rows are sorted), so two processes' syncs never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

ADD = """
INSERT INTO rate_limit_counts (window_start, bucket, used)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::integer[])
ON CONFLICT (window_start, bucket) DO UPDATE SET used = rate_limit_counts.used + EXCLUDED.used
RETURNING window_start, bucket, used
"""
PURGE = "DELETE FROM rate_limit_counts WHERE window_start < %s"

#: (window start, bucket)
Key = tuple[int, str]


class SharedCounts:
    """PostgreSQL's `rate_limit_counts`, through one connection opened at the first call
    (and again after it drops)."""

    def __init__(self, conninfo: dict[str, Any]) -> None:
        self._conninfo = {**conninfo, "autocommit": True}
        self._conn: psycopg.Connection[Any] | None = None

    def add(self, counted: Sequence[tuple[Key, int]]) -> dict[Key, int]:
        """Add each key's count (0 reads its total only); every key's total after."""
        rows = sorted(counted)
        if not rows:
            return {}
        starts = [start for (start, _), _ in rows]
        buckets = [bucket for (_, bucket), _ in rows]
        used = [count for _, count in rows]
        answer = self._execute(ADD, (starts, buckets, used))
        return {(int(start), str(bucket)): int(total) for start, bucket, total in answer}

    def purge(self, before: int) -> None:
        """Forget the windows that started before `before` (epoch seconds)."""
        self._execute(PURGE, (before,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._connection().cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            self.close()  # the next call opens a new one
            raise

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self._conninfo)
        return self._conn
