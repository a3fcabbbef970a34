"""`make bench-scale`: the ledger at the size of a platform audit, on PostgreSQL.

1. One practice's history is made through the real use cases (patients, PMS balances,
   card payments, refunds, batches closing, deposits arriving: every event a real one), in
   a scratch SQLite store.
2. The stored events (the library's own records) are cloned for every practice, each
   clone with its own ids (every UUID and every 64-hex hash in the records is mapped to a
   new one per practice), interleaved so the practices' events alternate as in a live
   store, and COPYed into a fresh PostgreSQL database. (Ids the code derives from other
   ids, e.g. a deposit's id from its batch's, are mapped like any other, so a cloned
   payment's `deposit_id` link does not find its deposit; the figures do not depend on it.)
3. Measured: raw select-and-decode of every record (the floor of any replay); in one
   process of its own (with its peak RSS), the catch-up a server starting on the store does
   (the views at position 0 built in memory and installed, the writeback intake applied
   event by event) and a full replay of all views: that build (`Projector.install`, the
   call `payledger replay` makes) plus the replay's checksums, the views built once; the
   API (served by `payledger serve` in its own process, with its peak RSS): p50/p99 of the
   Transactions month view, the deposits list, one deposit's items, an AR filter; as-of
   reports of one practice (transactions and accounts receivable).

Size: PAYLEDGER_SCALE_EVENTS (default 20,000) over PAYLEDGER_SCALE_PRACTICES (10), with
PAYLEDGER_SCALE_GUARANTORS (1,000); the platform-audit size is 1,000,000 / 200 / 100,000.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import time as clock_time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import psycopg

from adapters.processor.port import CardInput
from bench.run import fresh_database
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from domain.receivables import Balance
from domain.users import Role
from services.app import accounts
from services.app.due import run_due_work
from services.app.payments import collect_payment, refund_payment
from services.app.practices import create_practice, register_patient
from services.app.receivables import record_balance
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings

#: the defaults are a fiftieth of the platform-audit size (a few minutes in all);
#: PAYLEDGER_SCALE_EVENTS=1000000 PAYLEDGER_SCALE_PRACTICES=200
#: PAYLEDGER_SCALE_GUARANTORS=100000 asks for the full size (docs/performance.md)
EVENTS = int(os.environ.get("PAYLEDGER_SCALE_EVENTS", "20000"))
PRACTICES = int(os.environ.get("PAYLEDGER_SCALE_PRACTICES", "10"))
GUARANTORS = int(os.environ.get("PAYLEDGER_SCALE_GUARANTORS", "1000"))
SAMPLES = int(os.environ.get("PAYLEDGER_SCALE_SAMPLES", "200"))
CARD = CardInput("4242424242424242", 12, 2030, "123")
HEX32 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
DASHED = re.compile(rb"(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX64 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- 1. one practice's real history ---------------------------------------------------


def template_history(per_practice: int, patients: int) -> list[tuple[Any, ...]]:
    """A practice's stored records (originator_id, version, topic, state), in log order."""
    with TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), run_scheduler=False, maintain_views=False)
        ctx = build_components(settings)  # the views catch up once a day, before the due work
        practice = create_practice(
            ctx,
            name="Scale Dental",
            timezone="America/New_York",
            pms=PmsKind.OPENDENTAL,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "0001"),
            batch_cutoff=clock_time(18, 0),
            actor="bench",
        )
        pid = practice.id
        ids = []
        for i in range(patients):
            patient = register_patient(
                ctx,
                practice_id=pid,
                pms_patient_id=str(1000 + i),
                first_name=f"Pat{i}",
                last_name=f"Guarantor{i % 977}",
                email=f"p{i}@example.com" if i % 3 else None,
                phone="+16175550100" if i % 2 else None,
                guarantor_id=None,
                actor="bench",
            )
            ids.append(patient.id)
            total = (i * 7919) % 250_000
            record_balance(
                ctx,
                practice_id=pid,
                patient_id=patient.id,
                balance=Balance(
                    total=total,
                    bal_0_30=total // 2,
                    bal_31_60=total // 4,
                    bal_61_90=total // 8,
                    bal_over_90=total - total // 2 - total // 4 - total // 8,
                    insurance_estimate=0,
                    patient_portion=total,
                    on_payment_plan=i % 11 == 0,
                    is_guarantor=True,
                    last_payment_date=None,
                ),
                source="api",
                actor="bench",
            )
        assert ctx.sandbox_clock is not None
        n = 0
        while ctx.store.last_position() < per_practice:
            for _ in range(12):
                payment = collect_payment(
                    ctx,
                    practice_id=pid,
                    amount=1000 + (n * 37) % 90_000,
                    method=Method.VIRTUAL_TERMINAL,
                    card=CARD,
                    patient_id=ids[n % len(ids)],
                    actor="bench",
                )
                if n % 9 == 0:
                    refund_payment(  # a void
                        ctx, practice_id=pid, payment_id=payment.id, amount=None, actor="bench"
                    )
                n += 1
            ctx.sandbox_clock.advance(pid, 86400)
            ctx.catch_up()
            run_due_work(ctx)
        table = ctx.store.recorder.events_table_name  # type: ignore[attr-defined]
        rows = ctx.store.database().query(
            f"SELECT originator_id, originator_version, topic, state FROM {table} ORDER BY rowid"
        )
        ctx.store.close()
    return [
        (uuid.UUID(r["originator_id"]), r["originator_version"], r["topic"], bytes(r["state"]))
        for r in rows
    ]


# -- 2. clones, COPYed ----------------------------------------------------------------


def cloner(template: list[tuple[Any, ...]], clone: int) -> Callable[[bytes], bytes]:
    salt = f"clone-{clone}".encode()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"payledger-scale-{clone}")

    def new_hex32(match: re.Match[bytes]) -> bytes:
        return uuid.uuid5(namespace, match.group().decode()).hex.encode()

    def new_dashed(match: re.Match[bytes]) -> bytes:
        old = uuid.UUID(match.group().decode()).hex
        return str(uuid.uuid5(namespace, old)).encode()

    def new_hex64(match: re.Match[bytes]) -> bytes:
        return hashlib.sha256(salt + match.group()).hexdigest().encode()

    def remap(state: bytes) -> bytes:
        state = HEX64.sub(new_hex64, state)
        state = HEX32.sub(new_hex32, state)
        return DASHED.sub(new_dashed, state)

    return remap


def copy_clones(url: str, table: str, template: list[tuple[Any, ...]], practices: int) -> int:
    """Every practice's clone of the template, interleaved, COPYed in; how many rows."""
    remaps = [cloner(template, c) for c in range(practices)]
    spaces = [uuid.uuid5(uuid.NAMESPACE_URL, f"payledger-scale-{c}") for c in range(practices)]
    count = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN"
        ) as copy:
            for originator_id, version, topic, state in template:
                for c in range(practices):
                    copy.write_row(
                        (uuid.uuid5(spaces[c], originator_id.hex), version, topic, remaps[c](state))
                    )
                    count += 1
        conn.commit()
    return count


# -- 3. figures -----------------------------------------------------------------------


def select_and_decode(ctx: Components) -> float:
    started, start, decoded = time.perf_counter(), 0, 0
    while True:
        page = ctx.store.recorder.select_notifications(  # type: ignore[attr-defined]
            start=start, limit=1000, inclusive_of_start=False
        )
        if not page:
            break
        for n in page:
            ctx.store.mapper.to_domain_event(n)
        decoded += len(page)
        start = page[-1].id
    return decoded / (time.perf_counter() - started)


def fast_decode(ctx: Components) -> float:
    """Events/s of the replay's own read and decode (projections/rebuild.py `raw_pages`,
    projections/decode.py): the floor of the replay as it is built."""
    from projections import rebuild
    from projections.decode import decode_page

    stop = ctx.store.last_position()
    started, decoded = time.perf_counter(), 0
    for records in rebuild.raw_pages(ctx.store, 0, stop):
        decoded += len(decode_page(ctx.store.mapper, records))
    return decoded / (time.perf_counter() - started)


@contextmanager
def timed_build() -> Iterator[dict[str, float]]:
    """The seconds `projections.rebuild.build` takes (the in-memory build, before install)."""
    from projections import rebuild

    built = {"s": 0.0}
    original = rebuild.build

    def build(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            built["s"] += time.perf_counter() - started

    rebuild.build = build  # type: ignore[assignment]
    try:
        yield built
    finally:
        rebuild.build = original  # type: ignore[assignment]


def replay_figures(events: int) -> dict[str, float]:
    """For `make bench`: a store of about `events` events (PAYLEDGER_SCALE_PRACTICES, else
    one practice per 5,000 events; a tenth as many guarantors) made as `main` makes it,
    on a fresh PostgreSQL database; then, in this process, the library's select and
    decode, the replay's own read and decode ("decode alone"), and the replay of every
    view from position 0 (`Projector.install`, the call `payledger replay` makes, plus
    the checksums it prints). Events/s of each, the load average as numbers."""
    from projections.catalog import all_projections

    practices = int(os.environ.get("PAYLEDGER_SCALE_PRACTICES", max(1, events // 5000)))
    template = template_history(events // practices, max(1, events // 10 // practices))
    figures: dict[str, float] = {"load_at_start": os.getloadavg()[0]}
    with fresh_database() as url, TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=url, run_scheduler=False, maintain_views=False
        )
        ctx = build_components(settings)
        try:
            table = ctx.store.recorder.events_table_name  # type: ignore[attr-defined]
            figures["events"] = copy_clones(url, table, template, practices)
            figures["library_decode_per_s"] = select_and_decode(ctx)
            figures["decode_per_s"] = fast_decode(ctx)
            stop = ctx.store.last_position()
            views = all_projections()
            started = time.perf_counter()
            with timed_build() as built:
                ctx.projector.install(stop, views)
            figures["build_install_s"] = time.perf_counter() - started
            figures["build_s"] = built["s"]
            figures["install_s"] = figures["build_install_s"] - built["s"]
            checked = time.perf_counter()
            ctx.views.checksums(views)
            figures["checksums_s"] = time.perf_counter() - checked
            figures["replay_s"] = time.perf_counter() - started
            figures["replay_per_s"] = figures["events"] / figures["replay_s"]
            figures["ratio"] = figures["replay_per_s"] / figures["decode_per_s"]
        finally:
            ctx.store.close()
    figures["load_at_end"] = os.getloadavg()[0]
    return figures


def child_env(url: str, data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PAYLEDGER_DATABASE_URL": url,
        "PAYLEDGER_DATA_DIR": str(data),
        "PAYLEDGER_RUN_SCHEDULER": "false",
    }


def replay_in_child(url: str, data: Path) -> dict[str, float]:
    """The start-up catch-up and the replay in their own process (`bench.scale replay`):
    their seconds and the child's peak RSS (KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "replay"],
        env=child_env(url, data),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    say(done.stderr)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rss_kib"] = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return figures


def replay() -> None:
    """What a server starting on the fresh store does, then what `payledger replay` adds to
    it, timed: the start-up catch-up builds the fresh views in memory and installs them
    (`Projector.install`, the very call `payledger replay` makes, on the same log) and
    applies the writeback intake event by event; the replay's checksums are then read
    from the installed views. Building the views a second time would measure the same
    build again, so the replay is timed as that build plus its checksums."""
    from projections.catalog import all_projections
    from projections.runner import Projector

    built: list[float] = []
    install = Projector.install

    def timed(self: Projector, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        install(self, *args, **kwargs)
        built.append(time.perf_counter() - started)

    Projector.install = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    ctx = build_components(Settings.from_env(None, run_scheduler=False))
    startup = time.perf_counter() - started
    assert len(built) == 1, "the start-up built the fresh views in memory once"
    started = time.perf_counter()
    for name, view in ctx.views.checksums(all_projections()).items():
        say(f"{name:<18} {view['checksum']} {view['rows']:>10} rows  at {view['position']}")
    checksums = time.perf_counter() - started
    ctx.store.close()
    figures = {"startup_s": startup, "build_s": built[0], "checksums_s": checksums}
    print(json.dumps(figures))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timings(client: httpx.Client, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
    seen = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(path, params=params)
        seen.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.text[:500])
    seen.sort()
    return {
        "p50_ms": statistics.median(seen) * 1000,
        "p99_ms": seen[min(len(seen) - 1, int(len(seen) * 0.99))] * 1000,
    }


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def api_figures(url: str, data: Path, ctx: Components) -> dict[str, Any]:
    practice_id = ctx.store.database().query("SELECT id FROM practices ORDER BY id LIMIT 1")[0][
        "id"
    ]
    _, token = accounts.invite_user(
        ctx,
        practice_id=uuid.UUID(practice_id),
        name="Scale Auditor",
        email=None,
        role=Role.AUDITOR,
        password=None,
        actor="bench",
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.scale", "serve", str(port)],
        env=child_env(url, data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures: dict[str, Any] = {}
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            months = c.get("/v1/transactions", params={"limit": 1}).json()["items"]
            day = months[0]["date"] if months else "2026-01-01"
            month = {"from": day[:8] + "01", "to": day, "limit": 50}
            figures["transactions_month"] = timings(c, "/v1/transactions", month, SAMPLES)
            span = {"from": "2020-01-01", "to": "2030-12-31"}
            figures["deposits_list"] = timings(c, "/v1/deposits", span, SAMPLES)
            deposit = c.get("/v1/deposits", params=span).json()["items"][0]["id"]
            figures["deposit_items"] = timings(c, f"/v1/deposits/{deposit}", {}, SAMPLES)
            ar = {"min_total": 50_000, "has_email": "true", "sort": "-total"}
            figures["ar_filter"] = timings(c, "/v1/ar/patients", ar, SAMPLES)
            for view in ("transactions", "accounts-receivable"):
                params: dict[str, Any] = {"as_of": "2030-01-01T00:00:00Z", **span, "limit": 100}
                started = time.perf_counter()
                answer = c.get(f"/v1/reports/{view}", params=params)
                assert answer.status_code == 200, answer.text[:500]
                figures[f"as_of_{view}_s"] = time.perf_counter() - started
                figures[f"as_of_{view}_events"] = answer.json()["events_applied"]
        figures["api_peak_rss_mib"] = peak_rss_kib(server.pid) / 1024
    finally:
        server.terminate()
        server.wait(30)
    return figures


def main() -> None:
    per_practice = EVENTS // PRACTICES
    patients = max(1, GUARANTORS // PRACTICES)
    say(f"scale: {EVENTS:,} events over {PRACTICES} practices, {GUARANTORS:,} guarantors")
    started = time.perf_counter()
    template = template_history(per_practice, patients)
    say(
        f"one practice's history: {len(template):,} events in {time.perf_counter() - started:.1f} s"
    )
    figures: dict[str, Any] = {"template_events": len(template), "load_at_start": load()}
    with fresh_database() as url, TemporaryDirectory() as tmp:
        data = Path(tmp)
        ctx = build_components(
            Settings(data_dir=data, database_url=url, run_scheduler=False, maintain_views=False)
        )
        started = time.perf_counter()
        table = ctx.store.recorder.events_table_name  # type: ignore[attr-defined]
        figures["events"] = copy_clones(url, table, template, PRACTICES)
        figures["generate_s"] = time.perf_counter() - started
        say(f"stored {figures['events']:,} events in {figures['generate_s']:.1f} s")
        figures["select_decode_per_s"] = select_and_decode(ctx)
        say(f"select and decode: {figures['select_decode_per_s']:,.0f} events/s")
        child = replay_in_child(url, data)
        figures["catch_up_s"] = child["startup_s"]
        figures["intake_s"] = child["startup_s"] - child["build_s"]
        say(f"start-up catch-up: {figures['catch_up_s']:.1f} s")
        figures["replay_s"] = seconds = child["build_s"] + child["checksums_s"]
        figures["checksums_s"] = child["checksums_s"]
        figures["replay_per_s"] = figures["events"] / seconds
        figures["replay_peak_rss_mib"] = child["rss_kib"] / 1024
        say(f"replay: {seconds:.1f} s ({figures['replay_per_s']:,.0f} events/s)")
        for runner in ctx.projector.runners:  # the views and the intake the child caught up
            runner.load_position()
        figures.update(api_figures(url, data, ctx))
        ctx.store.close()
    report(figures)


def report(f: dict[str, Any]) -> None:
    out = io.StringIO()
    out.write(f"events                 {f['events']:>12,}  ({PRACTICES} practices)\n")
    out.write(f"generate (COPY)        {f['generate_s']:>12.1f} s\n")
    out.write(f"select+decode          {f['select_decode_per_s']:>12,.0f} events/s\n")
    rate = f"{f['replay_per_s']:,.0f} events/s"
    ratio = f["replay_per_s"] / f["select_decode_per_s"]
    out.write(f"replay all views       {f['replay_s']:>12.1f} s  ({rate}; target < 20 s)\n")
    out.write(f"replay / select+decode {ratio:>12.2f}\n")
    out.write(f"replay peak RSS        {f['replay_peak_rss_mib']:>12.0f} MiB\n")
    out.write(f"  of which checksums   {f['checksums_s']:>12.1f} s\n")
    out.write(
        f"catch-up from empty    {f['catch_up_s']:>12.1f} s  (views in memory; the intake "
        f"event by event: {f['intake_s']:.1f} s)\n"
    )
    for name in ("transactions_month", "deposits_list", "deposit_items", "ar_filter"):
        t = f[name]
        p50, p99 = t["p50_ms"], t["p99_ms"]
        out.write(f"{name:<22} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  (target p99 < 50 ms)\n")
    for view in ("transactions", "accounts-receivable"):
        out.write(f"as-of {view:<16} {f[f'as_of_{view}_s']:>10.2f} s  "
                  f"({f[f'as_of_{view}_events']:,} events; target < 2 s)\n")  # fmt: skip
    out.write(f"API peak RSS           {f['api_peak_rss_mib']:>12.0f} MiB\n")
    out.write(f"load average           {f['load_at_start']} at the start, {load()} at the end\n")
    print(out.getvalue())


def serve(port: int) -> None:
    """The API alone, without the scheduler (its due work would write while we measure)."""
    import uvicorn

    from services.asgi import create_app

    settings = Settings.from_env(None, run_scheduler=False)
    uvicorn.run(
        create_app(build_components(settings)), host="127.0.0.1", port=port, log_level="error"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    elif sys.argv[1:2] == ["replay"]:
        replay()
    elif sys.argv[1:2] == ["figures"]:  # replay_figures alone: python -m bench.scale figures N
        print(json.dumps(replay_figures(int(sys.argv[2]) if sys.argv[2:] else EVENTS)))
    else:
        main()
