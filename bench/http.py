"""`make bench-http`: the HTTP API under load, as ratios against the stack's floor.

Both servers run in subprocesses with the same settings (uvicorn, one process, access
log on) on this machine, measured in one run with wrk (8 connections, 2 threads):

- floor: a trivial FastAPI POST endpoint with a pydantic body (bench/trivial.py), and
  a trivial GET;
- `POST /v1/payments`: a virtual-terminal payment with a test card, each request its
  own Idempotency-Key, on PostgreSQL and on the embedded SQLite store;
- `GET /v1/transactions`: the first page of the month.

Ratios are what to compare between runs; absolute figures move with the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.run import fresh_database

SECONDS = int(os.environ.get("PAYLEDGER_BENCH_HTTP_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("PAYLEDGER_BENCH_HTTP_CONNECTIONS", "8"))
BIN = Path(sys.executable).parent
#: the server stack of both servers: "auto" (uvloop and httptools, installed with payledger)
#: or "asyncio" (the standard event loop and h11), to compare the two
STACK = os.environ.get("PAYLEDGER_BENCH_HTTP_STACK", "auto")
STACK_ARGS = ["--loop", "asyncio", "--http", "h11"] if STACK == "asyncio" else []

PAYMENT_SCRIPT = """
local counter = 0
local tag = ""
local made = 0
setup = function(thread)
  made = made + 1
  thread:set("id", made)
end
init = function(args)
  tag = tostring(id) .. "-" .. tostring(os.time())
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = '%(body)s'
request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. tag .. "-" .. counter
  return wrk.format()
end
"""

BODY = json.dumps(
    {
        "method": "virtual_terminal",
        "amount": 1250,
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }
)

GET_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


@contextmanager
def served(argv: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready, process, log)
        yield
    finally:
        process.terminate()
        process.wait(10)


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "payledger"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def setup_practice(env: dict[str, str]) -> str:
    """A practice and an admin; returns the admin's bearer token."""
    out = cli(
        env,
        "practice", "create", "--name", "Bench Dental", "--timezone", "America/Chicago",
        "--pms", "dentrix", "--deposit-last4", "0001",
    )  # fmt: skip
    practice = re.search(r"[0-9a-f-]{36}", out)
    assert practice, out
    out = cli(env, "user", "create", "--practice", practice.group(0), "--name", "Bench Admin")
    token = re.search(r"^token (\S+)$", out, re.MULTILINE)
    assert token, out
    return token.group(1)


def wrk(url: str, script: str) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"\s50%\s+(\S+)", text)
    p99 = re.search(r"\s99%\s+(\S+)", text)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    assert rps and p50 and p99, text
    return {
        "rps": float(rps.group(1)),
        "p50_ms": ms(p50.group(1)),
        "p99_ms": ms(p99.group(1)),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def trivial_figures(env: dict[str, str], tmp: Path) -> dict[str, dict[str, float]]:
    port = free_port()
    argv = [
        str(BIN / "python"), "-m", "uvicorn", "bench.trivial:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", *STACK_ARGS,
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with served(argv, env, f"{base}/v1/transactions", tmp / "trivial.log"):
        return {
            "post": wrk(f"{base}/v1/payments", PAYMENT_SCRIPT % {"token": "x", "body": BODY}),
            "get": wrk(f"{base}/v1/transactions", GET_SCRIPT % {"token": "x"}),
        }


def ledger_figures(env: dict[str, str], tmp: Path) -> dict[str, dict[str, float]]:
    token = setup_practice(env)
    port = free_port()
    argv = [str(BIN / "payledger"), "serve", "--port", str(port), *STACK_ARGS]
    base = f"http://127.0.0.1:{port}"
    with served(argv, env, f"{base}/healthz", tmp / "payledger.log"):
        script = PAYMENT_SCRIPT % {"token": token, "body": BODY}
        figures = {"post": wrk(f"{base}/v1/payments", script)}
        figures["get"] = wrk(f"{base}/v1/transactions", GET_SCRIPT % {"token": token})
    return figures


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench-http does it)")
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        base_env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
        floor = trivial_figures(base_env, tmp)
        sqlite_env = {**base_env, "PAYLEDGER_DATA_DIR": str(tmp / "sqlite")}
        sqlite_env.pop("PAYLEDGER_DATABASE_URL", None)
        runs = {"SQLite": ledger_figures(sqlite_env, tmp)}
        with fresh_database() as url:
            pg_env = {
                **base_env,
                "PAYLEDGER_DATA_DIR": str(tmp / "pg"),
                "PAYLEDGER_DATABASE_URL": url,
            }
            runs["PostgreSQL"] = ledger_figures(pg_env, tmp)
    print(
        f"payledger bench-http: wrk, {CONNECTIONS} connections, {SECONDS} s per figure, "
        f"one uvicorn process each (same run), server stack: {STACK}\n"
    )
    row = "  {:44s} {:8.0f} /s  p50 {:6.1f} ms  p99 {:6.1f} ms  {}"
    print(row.format("floor: trivial FastAPI POST (pydantic body)", floor["post"]["rps"],
                     floor["post"]["p50_ms"], floor["post"]["p99_ms"], "(1.00x)"))  # fmt: skip
    print(row.format("floor: trivial FastAPI GET", floor["get"]["rps"], floor["get"]["p50_ms"],
                     floor["get"]["p99_ms"], "(1.00x)"))  # fmt: skip
    for store, figures in runs.items():
        for kind, label, target in (
            ("post", f"POST /v1/payments on {store}", "target >= 0.70x, p99 < 50 ms"),
            ("get", f"GET /v1/transactions on {store}", "target >= 0.80x"),
        ):
            f = figures[kind]
            ratio = f["rps"] / floor[kind]["rps"]
            failed = f" {int(f['non_2xx'])} non-2xx!" if f["non_2xx"] else ""
            print(row.format(label, f["rps"], f["p50_ms"], f["p99_ms"],
                             f"({ratio:.2f}x; {target}){failed}"))  # fmt: skip
    print(json.dumps({"floor": floor, **runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
