"""The OWASP lint's judgement (scripts/openapi-lint): what fails it, and what the exception
table of docs/reliability.md ("Lint exceptions") excuses."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def lint_script() -> ModuleType:
    path = ROOT / "scripts" / "openapi-lint"
    loader = importlib.machinery.SourceFileLoader("openapi_lint", str(path))
    spec = importlib.util.spec_from_loader("openapi_lint", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["openapi_lint"] = module  # its dataclass looks its module up
    loader.exec_module(module)
    return module


def finding(code: str, *path: str, severity: int = 0) -> dict[str, Any]:
    return {"code": code, "path": list(path), "message": "m", "severity": severity}


def test_the_exception_table_is_read_from_the_reliability_doc() -> None:
    lint = lint_script()
    rows = {(e.rule, e.where) for e in lint.exceptions()}
    assert ("owasp:api2:2023-write-restricted", "POST /webhooks/stripe") in rows
    assert ("owasp:api2:2023-no-credentials-in-url", "* /pay/{token}") in rows
    assert all(e.why for e in lint.exceptions()), "every exception says why"


def test_the_lint_fails_on_an_error_no_exception_covers_and_on_a_stale_exception() -> None:
    lint = lint_script()
    allowed = [
        lint.Exception_("owasp:api2:2023-write-restricted", "POST /webhooks/stripe", "signed"),
        lint.Exception_("owasp:api4:2023-rate-limit", "*", "later"),
    ]
    covered = finding("owasp:api2:2023-write-restricted", "paths", "/webhooks/stripe", "post")
    limit = finding("owasp:api4:2023-rate-limit", "paths", "/v1/x", "get", "responses", "200")
    other = finding("owasp:api2:2023-write-restricted", "paths", "/v1/payments", "post")
    warning = finding("owasp:api4:2023-string-restricted", "components", "x", severity=1)
    assert lint.judge([covered, limit, warning], allowed) == []
    failures = lint.judge([covered, limit, other], allowed)
    assert len(failures) == 1 and "POST /v1/payments" in failures[0]
    stale = lint.judge([limit], allowed)
    assert len(stale) == 1 and "covers no finding" in stale[0]
