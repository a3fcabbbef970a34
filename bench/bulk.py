"""The bulk payment request's figure, on its own: one bulk request to 5,000 patients (by
their preferred channel, the whole balance) on a fresh PostgreSQL database, end to end
through the use case (`python -m bench.bulk [runs]`; `figures()` for bench/run.py).

The seconds are wall-clock, so they depend on what else the machine runs: each run also
gives this process's CPU seconds during the bulk (every thread: the command's, its
sender's, the views') and the one-minute load average when it began."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.ar import BULK, populate, practice, send_to_everyone
from bench.run import fresh_database
from services.bootstrap import build_components
from services.settings import Settings


def figures() -> dict[str, float]:
    """{"bulk_5000_seconds": the bulk request's seconds, "bulk_sent": how many it sent,
    "bulk_cpu_seconds": this process's CPU seconds in it, "load_average": the machine's
    one-minute load average as it began}."""
    with fresh_database() as url, TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False))
        try:
            target = practice(ctx, "Bulk Dental")
            populate(ctx, target, BULK)
            load = os.getloadavg()[0]
            cpu = time.process_time()
            started = time.perf_counter()
            sent = send_to_everyone(ctx, target.id)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            ctx.store.close()
    return {
        f"bulk_{BULK}_seconds": seconds,
        "bulk_sent": float(sent),
        "bulk_cpu_seconds": cpu,
        "load_average": load,
    }


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    best = float("inf")
    for _ in range(runs):
        found = figures()
        seconds = found[f"bulk_{BULK}_seconds"]
        best = min(best, seconds)
        print(
            f"bulk payment request: {found['bulk_sent']:.0f} sent in {seconds:.2f} s "
            f"(CPU {found['bulk_cpu_seconds']:.2f} s, load average {found['load_average']:.1f}; "
            f"target a {BULK:,}-patient bulk < 3 s: {'met' if seconds < 3 else 'MISSED'})"
            + (
                f" [PAYLEDGER_BENCH_BULK={os.environ['PAYLEDGER_BENCH_BULK']}]"
                if "PAYLEDGER_BENCH_BULK" in os.environ
                else ""
            )
        )
    if runs > 1:
        print(f"best of {runs}: {best:.2f} s")


if __name__ == "__main__":
    main()
