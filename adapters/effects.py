"""The rule that an effect on an outside system is never made inside a retry.

A retry on a version conflict runs its decision again; an effect made inside it would be
made again too (a second void, a refund decided anew with a later clock). So the retry
(`services.context.retry_on_conflict`) marks the decisions it runs, and every call that
asks a processor or a PMS to act first checks that it is not inside one
(`check_outside_retry`): the intent is recorded inside the retry, the call is made once
after it, and its outcome is recorded by a retry of its own that only saves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deciding: ContextVar[bool] = ContextVar("deciding", default=False)


class EffectInsideRetry(RuntimeError):
    """A call to an outside system was made inside a retry-on-conflict: a bug."""


@contextmanager
def deciding() -> Iterator[None]:
    """Inside: a decision that may run again; no outside effect may be made here."""
    token = _deciding.set(True)
    try:
        yield
    finally:
        _deciding.reset(token)


def check_outside_retry(what: str) -> None:
    if _deciding.get():
        raise EffectInsideRetry(
            f"{what} was asked inside a retry on conflict: record its intent there and make "
            "the call once, after the retry"
        )
