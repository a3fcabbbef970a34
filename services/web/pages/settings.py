"""Settings (admins): the practice's people (invite, change role, revoke) and its payments
settings (batch cut-off, automatic writeback, PMS payment type, reminders, PMS connection)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.errors import InvalidValue
from domain.users import MIN_PASSWORD, User, check_password, normal_email
from services.app import accounts, practice_views, user_views
from services.app.accounts import SessionUser
from services.app.inputs import EaglesoftIn, OpenDentalIn, PasswordIn, RoleIn, SettingsIn, UserIn
from services.app.practices import practice_of
from services.web import render, session
from services.web.forms import FieldErrors, FormError, run
from services.web.pages.common import practice
from services.web.session import Admin, Manager, PostedForm, client_address, ctx_of

router = APIRouter(include_in_schema=False)

ROLES = {"admin": "Admin", "staff": "Staff", "auditor": "Auditor"}
PMS_NAMES = {"opendental": "Open Dental", "eaglesoft": "Eaglesoft", "dentrix": "Dentrix"}


def settings_page(
    request: Request,
    user: SessionUser,
    *,
    error: str | None = None,
    status: int = 200,
    invite: dict[str, str] | None = None,
    invited: dict[str, Any] | None = None,
    payments: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    people = user_views.list_users(ctx, pid)["items"]
    answer = practice_views.one_practice(ctx, user.caller, pid).model_dump(by_alias=True)
    return render.page(
        request,
        "settings.html",
        user=user,
        practice=practice(request, user),
        section="settings",
        status=status,
        error=error,
        people=sorted(people, key=lambda p: (p["status"] != "active", p["name"].lower())),
        roles=ROLES,
        pms_names=PMS_NAMES,
        min_password=MIN_PASSWORD,
        invite=invite or {"role": "staff"},
        invited=invited,
        settings=answer,
        payments=payments or payments_values(answer),
        processor=ctx.settings.processor,
        errors=errors or {},
    )


def payments_values(answer: dict[str, Any]) -> dict[str, str]:
    """The payments settings as the form shows them (keys never shown, only typed anew)."""
    opendental = answer["connection"].get("opendental", {})
    eaglesoft = answer["connection"].get("eaglesoft", {})
    return {
        "pms": answer["pms"],
        "batch_cutoff": answer["batch_cutoff"],
        "auto_writeback": "true" if answer["auto_writeback"] else "",
        "pms_payment_type": answer["pms_payment_type"] or "",
        "reminder_days": ", ".join(str(d) for d in answer["reminder_days"]),
        "od_base_url": opendental.get("base_url", ""),
        "es_bridge_url": eaglesoft.get("bridge_url", ""),
        "es_timeout": str(eaglesoft.get("timeout", "")),
    }


@router.get("/settings")
def settings(request: Request, user: Manager) -> HTMLResponse:
    return settings_page(request, user)


@router.post("/settings/users")
def invite(request: Request, user: Admin, form: PostedForm) -> Response:
    """Invite a person. The page answers directly (no redirect): the new user's API token
    is shown this once and is never stored in a cookie or a URL."""
    values = {k: form.get(k) for k in ("name", "email", "role")}
    errors = FieldErrors()
    try:
        if not values["name"].strip():
            errors.add("name", "Enter the person's name")
        if not values["email"]:
            errors.add("email", "Enter the email they sign in with")
        else:
            errors.check("email", normal_email, values["email"])
        if not form.fields.get("password"):
            errors.add("password", "Enter a first password for them to sign in with")
        else:
            errors.check("password", check_password, form.fields["password"])
        body = errors.check(
            "name",
            UserIn,
            name=values["name"],
            email=values["email"] or None,
            role=values["role"],
            password=form.fields.get("password") or None,
        )
        errors.done()
        answer = run(
            user_views.invite_user,
            ctx_of(request),
            user.caller,
            practice_of(user.caller),
            body,
            form.key(user),
            client_address(request),
        )
    except FormError as refused:
        return settings_page(request, user, invite=values, **refused.shown)
    return settings_page(request, user, status=201, invited=answer.model_dump())


def user_action(
    request: Request, user: Admin, form: PostedForm, user_id: UUID, action: Any, *body: Any
) -> dict[str, Any] | Response:
    """Run one users API call on a person of the practice; a refusal re-renders Settings."""
    try:
        answer: dict[str, Any] = run(
            action,
            ctx_of(request),
            user.caller,
            practice_of(user.caller),
            user_id,
            *body,
            form.key(user),
            client_address(request),
        )
    except FormError as refused:
        return settings_page(request, user, error=refused.message, status=refused.status)
    return answer


@router.post("/settings/users/{user_id}/role")
def change_role(request: Request, user: Admin, form: PostedForm, user_id: UUID) -> Response:
    try:
        body = run(RoleIn, role=form.get("role"))
    except FormError as refused:
        return settings_page(request, user, error=refused.message, status=refused.status)
    answer = user_action(request, user, form, user_id, user_views.change_role, body)
    if isinstance(answer, Response):
        return answer
    if user_id == user.user_id:  # your sessions ended with the change: sign in as you are now
        return render.redirect(request, "/signin", "Your role changed; sign in again.")
    return render.redirect(
        request, "/settings", f"{answer['name']} is now {ROLES[answer['role']].lower()}."
    )


@router.post("/settings/users/{user_id}/password")
def set_password(request: Request, user: Admin, form: PostedForm, user_id: UUID) -> Response:
    try:
        body = run(PasswordIn, password=form.fields.get("password", ""))
    except FormError as refused:
        return settings_page(request, user, error=refused.message, status=refused.status)
    answer = user_action(request, user, form, user_id, user_views.set_password, body)
    if isinstance(answer, Response):
        return answer
    if user_id == user.user_id:  # your own: every session ended, this browser gets a new one
        response = render.redirect(request, "/settings", "You have a new password.")
        return renew_session(request, response, user)
    return render.redirect(
        request,
        "/settings",
        f"{answer['name']} has a new password; give it to them in person or by phone. "
        "Their sessions were signed out.",
    )


def renew_session(request: Request, response: Response, user: SessionUser) -> Response:
    """A new session for this browser, after a change that ended every session of the
    signed-in person."""
    ctx = ctx_of(request)
    person = ctx.get(User, user.user_id, practice_of(user.caller))
    session.start_session(request, response, accounts.open_session(ctx, person, ctx.clock.now()))
    return response


@router.post("/settings/users/{user_id}/two-factor/reset")
def reset_two_factor(request: Request, user: Admin, form: PostedForm, user_id: UUID) -> Response:
    answer = user_action(request, user, form, user_id, user_views.reset_two_factor)
    if isinstance(answer, Response):
        return answer
    return render.redirect(
        request,
        "/settings",
        f"{answer['name']}'s two-step sign-in was reset: they sign in with their password "
        "alone, and may turn it on again from their account page.",
    )


@router.post("/settings/security")
def change_security(request: Request, user: Admin, form: PostedForm) -> Response:
    ctx = ctx_of(request)
    required = form.get("require_2fa_for_admins") == "true"
    try:
        body = run(SettingsIn, require_2fa_for_admins=required)
        run(
            practice_views.change_settings,
            ctx,
            user.caller,
            practice_of(user.caller),
            body,
        )
    except FormError as refused:
        return settings_page(request, user, error=refused.message, status=refused.status)
    if required:
        notice = (
            "Admins now need two-step sign-in: those without it set it up before anything else."
        )
    else:
        notice = "Two-step sign-in is now each admin's own choice."
    return render.redirect(request, "/settings", notice)


@router.post("/settings/users/{user_id}/revoke")
def revoke(request: Request, user: Admin, form: PostedForm, user_id: UUID) -> Response:
    answer = user_action(request, user, form, user_id, user_views.revoke_user)
    if isinstance(answer, Response):
        return answer
    if answer["id"] == str(user.user_id):
        return render.redirect(request, "/signin")
    return render.redirect(
        request,
        "/settings",
        f"{answer['name']} was revoked: their sign-in, sessions and API token stopped working.",
    )


@router.post("/settings/payments")
def change_payments(request: Request, user: Admin, form: PostedForm) -> Response:
    values = {
        "pms": form.get("pms"),
        "batch_cutoff": form.get("batch_cutoff"),
        "auto_writeback": "true" if form.get("auto_writeback") == "true" else "",
        "pms_payment_type": form.get("pms_payment_type"),
        "reminder_days": form.get("reminder_days"),
        "od_base_url": form.get("od_base_url"),
        "es_bridge_url": form.get("es_bridge_url"),
        "es_timeout": form.get("es_timeout"),
    }
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    errors = FieldErrors(SETTINGS_INPUTS)
    try:
        current = practice_views.one_practice(ctx, user.caller, pid)
        days = errors.check("reminder_days", reminder_days, values["reminder_days"])
        changes: dict[str, Any] = {
            "pms": values["pms"],
            "batch_cutoff": values["batch_cutoff"],
            "auto_writeback": values["auto_writeback"] == "true",
            "pms_payment_type": values["pms_payment_type"] or None,
            "reminder_days": days or [],
        }
        connection = errors.check("od_base_url", opendental_change, form, current)
        if connection is not None:
            changes["opendental"] = connection
        bridge = errors.check("es_bridge_url", eaglesoft_change, form, current)
        if bridge is not None:
            changes["eaglesoft"] = bridge
        body = errors.check("batch_cutoff", SettingsIn, **changes)
        errors.done()
        run(practice_views.change_settings, ctx, user.caller, pid, body)
    except FormError as refused:
        return settings_page(request, user, payments=values, **refused.shown)
    return render.redirect(request, "/settings", "The payments settings were saved.")


#: the settings' names in the API -> the form's inputs
SETTINGS_INPUTS = {
    "base_url": "od_base_url",
    "opendental": "od_base_url",
    "opendental.base_url": "od_base_url",
    "developer_key": "od_developer_key",
    "customer_key": "od_customer_key",
}


def reminder_days(text: str) -> list[int]:
    """'3, 10' -> [3, 10]; empty: no reminders."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise InvalidValue(
            "reminder days are whole days after sending, separated by commas, e.g. 3, 10",
            field="reminder_days",
        )
    return [int(p) for p in parts]


def opendental_change(form: Any, current: dict[str, Any]) -> OpenDentalIn | None:
    """The Open Dental connection to store, or None when nothing was typed. The keys are
    never shown, so changing the connection means typing both keys again."""
    if "od_base_url" not in form.fields:  # the page shows another PMS's connection
        return None
    base_url = form.get("od_base_url")
    developer_key = form.get("od_developer_key")
    customer_key = form.get("od_customer_key")
    known_url = current["connection"].get("opendental", {}).get("base_url", "")
    if not developer_key and not customer_key and base_url == known_url:
        return None
    if not developer_key or not customer_key:
        raise FormError(
            "To change the Open Dental connection, type its base URL, developer key and "
            "customer key (the stored keys are never shown).",
            field="opendental",
        )
    body: OpenDentalIn = run(
        OpenDentalIn, base_url=base_url, developer_key=developer_key, customer_key=customer_key
    )
    return body


def eaglesoft_change(form: Any, current: dict[str, Any]) -> EaglesoftIn | None:
    """The Eaglesoft bridge to store (validated as the API does), or None when nothing was
    typed. The token is never shown, so changing the bridge means typing it again."""
    if "es_bridge_url" not in form.fields:
        return None
    bridge_url = form.get("es_bridge_url")
    token = form.get("es_token")
    timeout = form.get("es_timeout")
    known = current["connection"].get("eaglesoft", {})
    if (
        not token
        and bridge_url == known.get("bridge_url", "")
        and timeout == str(known.get("timeout", ""))
    ):
        return None
    if not bridge_url or not token:
        raise FormError(
            "To set up the Eaglesoft bridge, type its address and its token (a stored "
            "token is never shown, so type it again to change the bridge).",
            field="eaglesoft",
        )
    if timeout and not (timeout.isascii() and timeout.isdigit()):
        raise FormError(
            "The bridge's time limit is a whole number of seconds, from 1 to 120.",
            field="eaglesoft.timeout",
        )
    body: EaglesoftIn = run(
        EaglesoftIn, bridge_url=bridge_url, token=token, timeout=int(timeout) if timeout else None
    )
    return body
