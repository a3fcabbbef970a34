"""The bulk payment request's figure, on its own: one bulk request to 5,000 patients (by
their preferred channel, the whole balance) on a fresh PostgreSQL database, end to end
through the use case (`python -m bench.bulk`; `figures()` for bench/run.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.ar import BULK, populate, practice, send_to_everyone
from bench.run import fresh_database
from services.bootstrap import build_components
from services.settings import Settings


def figures() -> dict[str, float]:
    """{"bulk_5000_seconds": the bulk request's seconds, "bulk_sent": how many it sent}."""
    with fresh_database() as url, TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False))
        try:
            target = practice(ctx, "Bulk Dental")
            populate(ctx, target, BULK)
            started = time.perf_counter()
            sent = send_to_everyone(ctx, target.id)
            seconds = time.perf_counter() - started
        finally:
            ctx.store.close()
    return {f"bulk_{BULK}_seconds": seconds, "bulk_sent": float(sent)}


def main() -> None:
    found = figures()
    seconds = found[f"bulk_{BULK}_seconds"]
    print(
        f"bulk payment request: {found['bulk_sent']:.0f} sent in {seconds:.2f} s "
        f"(target a {BULK:,}-patient bulk < 3 s: {'met' if seconds < 3 else 'MISSED'})"
        + (
            f" [PAYLEDGER_BENCH_BULK={os.environ['PAYLEDGER_BENCH_BULK']}]"
            if "PAYLEDGER_BENCH_BULK" in os.environ
            else ""
        )
    )


if __name__ == "__main__":
    main()
