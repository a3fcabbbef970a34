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
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from time import monotonic
from typing import Any

import httpx

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
        """The body as JSON; NotJson (with what it looked like) when it is not."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            kind = self.headers.get("content-type", "no content type").split(";")[0]
            start = " ".join(self.text[:80].split())
            raise NotJson(f"a body that is not JSON ({kind}: {start!r})") from None


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
    ) -> None:
        if seconds <= 0:
            raise ValueError("a PMS call needs a positive timeout")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.name = name
        self._client = client or httpx.Client(follow_redirects=False, verify=shared_tls())

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
                            f"{self.name} did not finish its answer to {method} within "
                            f"{self.seconds:g} s",
                            sent=True,
                        )
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise CallFailed(
                            f"{self.name} answered {method} with more than "
                            f"{self.max_bytes // (1024 * 1024)} MB",
                            sent=True,
                        )
                return Answer(response.status_code, response.headers, bytes(body))
        except NOT_SENT as error:
            raise CallFailed(
                f"{self.name} is unreachable ({type(error).__name__})", sent=False
            ) from error
        except httpx.InvalidURL as error:
            raise CallFailed(f"{self.name}'s URL is not valid: {error}", sent=False) from error
        except httpx.TimeoutException as error:
            raise CallFailed(
                f"{self.name} timed out on {method} ({type(error).__name__})", sent=True
            ) from error
        except httpx.HTTPError as error:
            raise CallFailed(
                f"{self.name} dropped the connection on {method} ({type(error).__name__})",
                sent=True,
            ) from error
