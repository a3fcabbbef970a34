"""`python -m bench.write`: the write-path figures of `make bench` alone, in a few minutes.

Raw single-row inserts from 8 connections (the baseline), collect with 8 writers
(store path only, and each command waiting for the views), and a bulk payment
request to `PAYLEDGER_BENCH_BULK` patients end to end, split into the command's
own work and the views catching up. Ratios only: compare runs by their ratios.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.ar import BULK, populate, practice, send_to_everyone
from bench.run import WRITERS, collect_concurrent, fresh_database, raw_inserts_concurrent
from services.bootstrap import build_components
from services.settings import Settings


def main() -> None:
    with fresh_database() as raw_url:
        raw8 = raw_inserts_concurrent(raw_url)
    with fresh_database() as url, TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False))
        target = practice(ctx, "Write Dental")
        stored = collect_concurrent(ctx, target.id, show=False)
        ctx.catch_up()
        shown = collect_concurrent(ctx, target.id)
        bulk = practice(ctx, "Bulk Dental")
        populate(ctx, bulk, BULK)
        settings = ctx.settings
        started = time.perf_counter()
        ctx.settings = replace(settings, maintain_views=False)
        sent = send_to_everyone(ctx, bulk.id)
        command = time.perf_counter() - started
        ctx.settings = settings
        ctx.projector.catch_up()
        total = time.perf_counter() - started
        ctx.store.close()
    print(f"raw insert txns, {WRITERS} connections   {raw8:8.0f} /s (1.00x)")
    print(f"collect, {WRITERS} writers, stored        {stored:8.0f} /s ({stored / raw8:.2f}x raw)")
    print(f"collect, {WRITERS} writers, views shown   {shown:8.0f} /s ({shown / raw8:.2f}x raw)")
    print(
        f"bulk to {BULK} patients ({sent} sent): {total:.1f} s end to end, "
        f"{command:.1f} s the command, {total - command:.1f} s the views"
    )


if __name__ == "__main__":
    main()
