"""A worker process (relay, writeback, ...) runs its loops until it is told to stop; a
loop that ends on its own stops the process with status 1, so that its supervisor starts
it again instead of keeping a process that no longer works."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from services.cli import run_until_stopped


@pytest.fixture(autouse=True)
def signals_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGTERM, previous[0])
    signal.signal(signal.SIGINT, previous[1])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_loop_that_ends_on_its_own_stops_the_process_with_1() -> None:
    seen_stop = threading.Event()

    def dies(stop: threading.Event) -> None:
        raise RuntimeError("the database went away and this loop did not survive it")

    def works(stop: threading.Event) -> None:
        stop.wait()
        seen_stop.set()

    started = time.monotonic()
    assert run_until_stopped(dies, works, check=0.05) == 1
    assert seen_stop.is_set()  # the other loop was told to stop, and did
    assert time.monotonic() - started < 5


def test_sigterm_stops_the_loops_with_0() -> None:
    def works(stop: threading.Event) -> None:
        stop.wait()

    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    assert run_until_stopped(works, check=0.05) == 0


def test_links_sent_to_patients_point_where_the_demo_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.cli import build_parser, settings_from

    monkeypatch.delenv("PAYLEDGER_BASE_URL", raising=False)
    args = build_parser().parse_args(["serve", "--demo", "--port", "8123"])
    assert settings_from(args).base_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("PAYLEDGER_BASE_URL", "https://pay.example.com")
    assert settings_from(args).base_url == "https://pay.example.com"
