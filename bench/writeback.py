"""Writeback figures for `make bench`: capture -> associated latency and writebacks per
second, in process, against the strict Open Dental fake served over HTTP."""

from __future__ import annotations

import os
import statistics
import threading
import time
from datetime import datetime
from datetime import time as clock_time
from typing import Any

from adapters.processor.port import CardInput
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from services.app.payments import collect_payment
from services.app.practices import create_practice, register_patient
from services.context import Ledger
from services.workers.writeback import Worker
from tests.fakes.opendental import FakeOpenDental, Served

PAYMENTS = int(os.environ.get("PAYLEDGER_BENCH_WRITEBACK", "300"))
CARD = CardInput("4242424242424242", 12, 2030, "123")


def writeback_figures(ledger: Ledger) -> dict[str, Any]:
    fake = FakeOpenDental()
    for n in range(1, 21):
        fake.add_patient(n)
    with Served(fake.app) as url:
        practices = []
        for index in range(4):
            practice = create_practice(
                ledger,
                name=f"Writeback Dental {index}",
                timezone="America/New_York",
                pms=PmsKind.OPENDENTAL,
                auto_writeback=True,
                deposit_account=DepositAccount("Checking", "0004"),
                batch_cutoff=clock_time(23, 59),
                actor="bench",
            )
            ledger.journal.set_connection(
                str(practice.id),
                {
                    "opendental": {
                        "base_url": f"{url}/api/v1",
                        "developer_key": "dev-key",
                        "customer_key": "cust-key",
                    }
                },
            )
            patients = [
                register_patient(
                    ledger,
                    practice_id=practice.id,
                    pms_patient_id=str(n),
                    first_name="P",
                    last_name=str(n),
                    email=None,
                    phone=None,
                    guarantor_id=None,
                    actor="bench",
                )
                for n in range(1, 21)
            ]
            practices.append((practice, patients))
        stop = threading.Event()
        worker = Worker(ledger, ledger.journal, "opendental")

        def work() -> None:
            while not stop.is_set():
                if not worker.run_once():
                    time.sleep(0.01)

        thread = threading.Thread(target=work)
        thread.start()
        ids = []
        for n in range(PAYMENTS):
            practice, patients = practices[n % len(practices)]
            ids.append(
                str(
                    collect_payment(
                        ledger,
                        practice_id=practice.id,
                        amount=1000 + n,
                        method=Method.VIRTUAL_TERMINAL,
                        card=CARD,
                        patient_id=patients[n % 20].id,
                        actor="bench",
                    ).id
                )
            )
        deadline = time.time() + 300
        while len(fake.payments) < PAYMENTS and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        thread.join()
    ledger.projector.catch_up()
    rows = ledger.db.query(
        "SELECT aggregate_id, type, occurred_at FROM event_feed WHERE type IN "
        "('PaymentCaptured', 'PaymentAssociated')"
    )
    times: dict[str, dict[str, datetime]] = {}
    for r in rows:
        times.setdefault(r["aggregate_id"], {})[r["type"]] = datetime.fromisoformat(
            r["occurred_at"].replace("Z", "+00:00")
        )
    pairs = [times[i] for i in ids if "PaymentAssociated" in times.get(i, {})]
    latencies = [(t["PaymentAssociated"] - t["PaymentCaptured"]).total_seconds() for t in pairs]
    span = (
        max(t["PaymentAssociated"] for t in pairs) - min(t["PaymentCaptured"] for t in pairs)
    ).total_seconds()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "written": len(pairs),
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "per_second": len(pairs) / span if span else 0.0,
        "duplicates": len(fake.payments) - len(set(fake.paid_markers())),
    }
