"""What each processor declares it can do beyond charge, void, capture and refund, and
what a processor that lacks a capability answers (adapters/processor/port.py)."""

from __future__ import annotations

import pytest

from adapters.processor.clearent import ClearentProcessor
from adapters.processor.port import (
    CAPABILITY_CALLS,
    Capability,
    CardProcessor,
    SettledBy,
    Unsupported,
)
from adapters.processor.sandbox import SandboxProcessor
from adapters.processor.stripe import StripeProcessor
from domain.errors import Conflict

ADAPTERS: list[type[CardProcessor]] = [SandboxProcessor, StripeProcessor, ClearentProcessor]


def test_every_capability_names_its_calls() -> None:
    assert set(CAPABILITY_CALLS) == set(Capability)
    for calls in CAPABILITY_CALLS.values():
        for call in calls:
            assert callable(getattr(CardProcessor, call))


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
@pytest.mark.parametrize("capability", list(Capability), ids=str)
def test_an_adapter_answers_the_calls_of_what_it_declares_and_only_those(
    adapter: type[CardProcessor], capability: Capability
) -> None:
    own = {
        call
        for call in CAPABILITY_CALLS[capability]
        if getattr(adapter, call) is not getattr(CardProcessor, call)
    }
    if capability in adapter.capabilities:
        assert own == set(CAPABILITY_CALLS[capability])
    else:
        assert own == set()


def test_what_pays_a_deposit_on_each_processor() -> None:
    assert SandboxProcessor.settles_by == SettledBy.CUTOFF
    assert StripeProcessor.settles_by == SettledBy.PAYOUTS
    assert ClearentProcessor.settles_by == SettledBy.BATCH_CLOSE
    # the processor's own payouts, or its own batches, are what it then reads
    assert Capability.PAYOUTS in StripeProcessor.capabilities
    assert Capability.BATCHES in ClearentProcessor.capabilities


def test_a_missing_capability_is_a_conflict_saying_what_the_processor_does_instead() -> None:
    sandbox = SandboxProcessor()
    assert not sandbox.can(Capability.READERS)
    with pytest.raises(Unsupported) as raised:
        sandbox.register_reader(None, code="simulated-wpe", label=None, key="k")
    assert isinstance(raised.value, Conflict)
    assert raised.value.capability == Capability.READERS
    assert "the sandbox takes any terminal_id as a simulated terminal" in raised.value.detail
    with pytest.raises(Unsupported, match="sandbox has no payouts"):
        sandbox.payout_items("acct_1", "po_1")
    with pytest.raises(Unsupported, match="sandbox has no batches"):
        sandbox.batches(None, "CLOSED")
    with pytest.raises(Unsupported, match="sandbox has no refund status"):
        sandbox.refund_now(None, "re_1")


def test_clearent_says_where_its_readers_are_driven() -> None:
    clearent = ClearentProcessor(lambda practice: None, base_url="http://127.0.0.1:9")
    try:
        assert clearent.can(Capability.BATCHES)
        assert not clearent.can(Capability.PAYOUTS)
        with pytest.raises(Unsupported, match="Clearent's mobile SDK"):
            clearent.readers("practice")
    finally:
        clearent._client.close()
