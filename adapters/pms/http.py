"""One bounded HTTP call to a PMS (Open Dental's API, the Eaglesoft bridge).

Whatever the other end does (answers at once, hangs, drips bytes, sends an endless or a
huge page, drops the connection), a call ends within ``seconds`` (the connection's
``timeout`` setting) with an answer read in full, or with ``CallFailed`` saying whether
the request may have reached the PMS (``sent``): a refused connection did not; a
timeout or a connection dropped after the request left may have, so a write's outcome
is then unknown.

How the bound holds: connecting, sending and each read of the answer are given a third
of the time each (httpx's per-operation timeouts), and no read of the body starts once
two thirds have passed. Redirects are not followed (a PMS API does not redirect: a 3xx
is a proxy or a wrong base URL, and is the caller's to report).

Where a call may go is checked at each connection (adapters/pms/addresses.py): never to
this host, a private network or a cloud's metadata service, unless the operator allows
the host. What a failure says is the same whatever stopped the connection ("could not
connect to Open Dental at <host>"), so that the errors shown to a practice do not tell
which ports of a host are open; and no message carries the body of an answer (the
callers log it, truncated, on the server only).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from dataclasses import dataclass
from time import monotonic
from typing import Any

import httpx

from adapters.pms.addresses import AddressRefused, AllowedHosts, GuardedTransport

log = logging.getLogger("payledger.pms")

#: the most a PMS answer may hold (a page of 100 patients is a few tens of kilobytes)
MAX_BYTES = 4 * 1024 * 1024


class CallFailed(Exception):
    """No complete answer. `sent`: the request may have reached the PMS."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class NotJson(ValueError):
    """The answer's body is not the JSON expected (an HTML page, a cut-off document)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; NotJson (saying its content type) when it is not. What it
        looked like is logged here, never put in the error, which may be shown."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            kind = self.headers.get("content-type", "no content type").split(";")[0]
            log.warning("a PMS answer that is not JSON (%s): %r", kind, self.start())
            raise NotJson(f"a body that is not JSON ({kind[:60]})") from None

    def start(self) -> str:
        """The beginning of the body, for the server's log only."""
        return " ".join(self.text[:300].split())


#: errors raised before any byte of the request left
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def shared_tls() -> ssl.SSLContext:
    """One TLS context (the default verification, certifi's authorities) for every PMS
    client of this process: making one reads and parses the authorities' file, tens of
    milliseconds of CPU, which a client per practice paid each time."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx.create_ssl_context()
        return _tls


class BoundedHttp:
    def __init__(
        self,
        seconds: float,
        client: httpx.Client | None = None,
        *,
        max_bytes: int = MAX_BYTES,
        name: str = "the PMS",
        allowed: AllowedHosts | None = None,
    ) -> None:
        """Without a `client`, calls reach global addresses only, and the hosts `allowed`
        (the operator's PAYLEDGER_PMS_ALLOWED_HOSTS)."""
        if seconds <= 0:
            raise ValueError("a PMS call needs a positive timeout")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.name = name
        self._client = client or httpx.Client(
            follow_redirects=False,
            transport=GuardedTransport(allowed or AllowedHosts(), shared_tls()),
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        start = monotonic()
        step = self.seconds / 3
        where = f"{self.name} at {host_of(url)}"
        try:
            with self._client.stream(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                timeout=httpx.Timeout(step),
                follow_redirects=False,
            ) as response:
                body = bytearray()
                chunks = response.iter_bytes()
                while True:
                    if monotonic() - start > self.seconds - step:
                        raise CallFailed(
                            f"{where} did not finish its answer to {method} within "
                            f"{self.seconds:g} s",
                            sent=True,
                        )
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise CallFailed(
                            f"{where} answered {method} with more than "
                            f"{self.max_bytes // (1024 * 1024)} MB",
                            sent=True,
                        )
                return Answer(response.status_code, response.headers, bytes(body))
        except AddressRefused as refused:
            raise CallFailed(f"could not connect to {where}: {refused}", sent=False) from None
        except NOT_SENT as error:
            log.info("could not connect to %s: %r", where, error)
            raise CallFailed(f"could not connect to {where}", sent=False) from error
        except httpx.InvalidURL as error:
            raise CallFailed(f"{self.name}'s URL is not valid", sent=False) from error
        except httpx.TimeoutException as error:
            log.info("%s timed out on %s: %r", where, method, error)
            raise CallFailed(
                f"{where} did not answer {method} within {self.seconds:g} s", sent=True
            ) from error
        except httpx.HTTPError as error:
            log.info("%s dropped the connection on %s: %r", where, method, error)
            raise CallFailed(f"{where} dropped the connection on {method}", sent=True) from error


def host_of(url: str) -> str:
    """The host a URL names (as written), for messages."""
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"
