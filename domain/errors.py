"""Typed domain errors. The service layer maps each kind to one HTTP status."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base class of every rule the domain refuses to break."""

    #: a short machine-readable code, used as the problem type's last segment
    code = "payments-error"
    #: the field of the request that the error is about, where there is one
    field: str | None = None

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if field is not None:
            self.field = field


class InvalidValue(PaymentsError):
    """A value that can never be right (a negative amount, an unknown time zone)."""

    code = "invalid-value"


class InvalidAmount(InvalidValue):
    code = "invalid-amount"
    field = "amount"


class InvalidCard(InvalidValue):
    code = "invalid-card"
    field = "card"


class NotFound(PaymentsError):
    code = "not-found"


class Conflict(PaymentsError):
    """The request is well formed but the object's state forbids it."""

    code = "conflict"


class PaymentNotApproved(Conflict):
    code = "payment-not-approved"


class VoidNotAllowed(Conflict):
    code = "void-not-allowed"


class RefundNotAllowed(Conflict):
    code = "refund-not-allowed"


class NothingLeftToRefund(RefundNotAllowed):
    """The payment was refunded in full already (whatever amount is asked for)."""

    code = "nothing-left-to-refund"


class RefundExceedsRemaining(InvalidAmount):
    code = "refund-exceeds-remaining"


class RefundWindowClosed(RefundNotAllowed):
    code = "refund-window-closed"


class AlreadyAssociated(Conflict):
    code = "already-associated"


class AlreadySettled(Conflict):
    code = "already-settled"


class AlreadyExists(Conflict):
    code = "already-exists"
