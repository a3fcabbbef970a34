"""Pay-link tokens never reach a log: the path of a pay page is logged without its token."""

from __future__ import annotations

import logging
import re

PAY_TOKEN = re.compile(r"/pay/[^/?#\s\"]+")


def redact_path(path: str) -> str:
    return PAY_TOKEN.sub("/pay/[redacted]", path)


class RedactPayTokens(logging.Filter):
    """Rewrites the path in uvicorn's access log lines (and any text argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True


def install() -> None:
    """Add the filter to uvicorn's access log once."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactPayTokens) for f in logger.filters):
        logger.addFilter(RedactPayTokens())
