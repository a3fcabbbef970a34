"""Secrets the service must read back (PMS keys), kept sealed in the database.

A sealed value is authenticated encryption (Fernet: AES-128-CBC and HMAC-SHA256) under
a key derived from the service's secret key (PAYLEDGER_SECRET_KEY, or `secret.key` in
the data directory), which is never in the database: a copy or dump of the database
holds no PMS key in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "sealed:v1:"


class Unreadable(Exception):
    """A sealed value that this secret key did not seal (the key was changed)."""


class Sealer:
    def __init__(self, secret: bytes, purpose: str) -> None:
        key = hmac.new(secret, f"payledger:sealed:{purpose}".encode(), hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str) -> str:
        """The text of a sealed value; a value written before sealing is answered as is."""
        if not self.is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise Unreadable(
                "sealed under another secret key (PAYLEDGER_SECRET_KEY or secret.key changed)"
            ) from None
