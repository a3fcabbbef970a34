"""POST /webhooks/stripe: Stripe's events, signature verified, each recorded once."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool

from services.app import answers
from services.app.stripe_events import apply_pending_events, receive_event
from services.http.deps import ComponentsDep
from services.http.openapi import problems

router = APIRouter(tags=["stripe"])


@router.post(
    "/webhooks/stripe",
    response_model=answers.WebhookReceived,
    responses=problems(404, 413, 422),
    summary="Stripe's webhook endpoint (Stripe-Signature verified; an event id counts once)",
)
async def stripe_webhook(
    request: Request, ctx: ComponentsDep, background: BackgroundTasks
) -> answers.WebhookReceived:
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    event_id, new = await run_in_threadpool(receive_event, ctx, payload, signature)
    if new:  # applied once the answer has gone (and by the scheduler, should this fail)
        background.add_task(apply_pending_events, ctx)
    return answers.WebhookReceived(received=True, id=event_id, replayed=not new)
