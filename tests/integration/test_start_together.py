"""Processes starting at once on a brand-new PostgreSQL database (compose.yaml starts the
API, the views' runners, the relay and the writeback consumers together) all start: the
event store's tables, the migrations and the views' tables are each made once."""

from __future__ import annotations

import threading
from pathlib import Path

from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings

STARTING = 5


def test_processes_starting_together_on_a_new_database_all_start(
    postgres_url: str, tmp_path: Path
) -> None:
    barrier = threading.Barrier(STARTING)
    started: list[Components] = []
    failures: list[BaseException] = []

    def start(n: int) -> None:
        settings = Settings(
            data_dir=tmp_path / f"var{n}",
            database_url=postgres_url,
            run_scheduler=False,
            secret_key="one key for every process",
        )
        barrier.wait()
        try:
            started.append(build_components(settings))
        except BaseException as error:  # the test reports every one
            failures.append(error)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(STARTING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert failures == []
        assert len(started) == STARTING
        positions = [c.projector.positions() for c in started]
        assert all(p == positions[0] for p in positions)
    finally:
        for ctx in started:
            ctx.store.close()
