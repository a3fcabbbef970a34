"""What the entry points served over HTTP (the API and the pages) share about refusals: the
status each kind of refusal answers, and the refusals they raise themselves (a bad cursor,
a missing sign-in). The API answers them as problem+json (services/http/errors.py), a page
as a message beside its form (services/web/forms.py)."""

from __future__ import annotations

from adapters.processor.port import ProcessorUnavailable
from domain.errors import Conflict, InvalidValue, NotFound, PaymentsError
from services.app.payments import EmailNotSent
from services.app.receivables import PmsSyncFailed

STATUS_BY_ERROR: list[tuple[type[PaymentsError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidValue, 422),
    (EmailNotSent, 502),
    (PmsSyncFailed, 502),
    (ProcessorUnavailable, 502),
]


class HttpProblem(Exception):
    """A refusal raised by the HTTP layer itself (auth, paging, headers), with its status."""

    def __init__(
        self, status: int, detail: str, *, code: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code, self.field = status, detail, code, field


def status_for(error: PaymentsError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 422
