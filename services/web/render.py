"""Rendering the dashboard's pages: one Jinja environment, money and practice-local dates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from domain.practices import Practice
from services.app.accounts import SessionUser
from services.web import session
from services.wording import Instant as Instant
from services.wording import LocalTime as LocalTime
from services.wording import label as label
from services.wording import money as money
from services.wording import parse_instant as parse_instant

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def cents_input(cents: Any) -> str:
    """Cents as the dollars an input field shows, e.g. '125.00'."""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{'-' if int(cents) < 0 else ''}{whole}.{rest:02d}"


def error_id(name: str) -> str:
    return "error-" + "".join(c if c.isalnum() else "-" for c in name)


@pass_context
def invalid(context: Context, name: str, described_by: str = "") -> Markup:
    """An input's marks when the form was refused for it: aria-invalid, and its message
    named by aria-describedby (with `described_by`, the input's own help, when it has one).
    Templates write <input name="amount"{{ invalid('amount') }}> and put
    {{ field_error('amount') }} after it."""
    if name not in (context.get("errors") or {}):
        if not described_by:
            return Markup("")
        return Markup(' aria-describedby="{}"').format(described_by)
    ids = f"{error_id(name)} {described_by}".strip()
    return Markup(' aria-invalid="true" aria-describedby="{}"').format(ids)


@pass_context
def field_error(context: Context, name: str) -> Markup:
    """The message beside a field the form was refused for (nothing when it is right)."""
    message = (context.get("errors") or {}).get(name)
    if not message:
        return Markup("")
    return Markup('<p class="field-error" id="{}">{}</p>').format(error_id(name), escape(message))


#: a PMS note's reference to one of our entries, e.g. "[ref:0fedd89d-d3f3-...]"
NOTE_REFERENCE = re.compile(r"\[ref:([0-9a-fA-F-]{8,36})\]")


def short_references(note: str | None) -> Markup:
    """A PMS note as the office reads it: each `[ref:<id>]` shown by the first 8 characters
    of its id (#0fedd89d; two in a row joined by a dot), the whole reference kept in its
    title, the note's first letter capitalised."""
    text = str(note or "")
    text = text[:1].upper() + text[1:]
    out, last = [], 0
    for found in NOTE_REFERENCE.finditer(text):
        between = text[last : found.start()]
        out.append(Markup(" · ") if last and not between.strip() else escape(between))
        out.append(
            Markup('<span class="ref" title="{}">#{}</span>').format(
                found.group(0), found.group(1)[:8]
            )
        )
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


env.globals["invalid"] = invalid
env.globals["field_error"] = field_error
env.filters["money"] = money
env.filters["label"] = label
env.filters["cents_input"] = cents_input
env.filters["short_references"] = short_references


def page(
    request: Request,
    template: str,
    *,
    user: SessionUser | None = None,
    practice: Practice | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = HTMLResponse("", status_code=status, headers={"Cache-Control": "no-store"})
    notice = session.take_notice(request, response)
    local = LocalTime(practice.timezone if practice else "UTC")
    html = env.get_template(template).render(
        request=request,
        user=user,
        practice=practice,
        local=local,
        notice=notice,
        csrf_token=user.csrf_token if user else "",
        form_key=session.new_form_key,
        sandbox=request.app.state.ctx.settings.sandbox,
        read_only=bool(user and user.caller.reads_only),
        **context,
    )
    response.body = response.render(html)
    response.headers["content-length"] = str(len(response.body))
    return response


def fragment(template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)


def redirect(
    request: Request, location: str, notice: str | None = None, kind: str = "ok"
) -> RedirectResponse:
    """After a form: back to a page (303), with a notice shown there once."""
    response = RedirectResponse(location, status_code=303)
    if notice:
        session.set_notice(request, response, notice, kind)
    return response


def safe_next(path: str | None, default: str = "/payments/transactions") -> str:
    """Only our own paths (no scheme, no host) as a place to return to."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path


__all__ = ["LocalTime", "Markup", "fragment", "page", "redirect", "safe_next"]
