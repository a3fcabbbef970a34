"""The read side as the use cases, routes and pages hold it: a runner of the views' and
tables' queries, never the database under it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from adapters.sql import Database

P = ParamSpec("P")
R = TypeVar("R")


class Reads:
    """The read side as the use cases, routes and pages see it: they run a view's query
    (a function of the database and its arguments, defined beside its projection or its
    table's adapter) without holding a connection or writing SQL themselves."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __call__(
        self, query: Callable[Concatenate[Database, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return query(self._db, *args, **kwargs)
