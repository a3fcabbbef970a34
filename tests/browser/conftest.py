"""Browser tests: the real app served by uvicorn on 127.0.0.1, driven in Debian's Chromium
by Playwright. Every test fails on a console error or a failed request in the page (unless
it says which it expects), and saves a screenshot under its tmp dir."""

from __future__ import annotations

import csv
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from domain.users import Role
from services.app import accounts
from services.app.demo import seed_demo
from services.asgi import create_app
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_EMAIL = "frontdesk@browser.example"
STAFF_EMAIL = "assistant@browser.example"
PASSWORD = "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    ctx: Components
    practice_id: Any
    admin_token: str


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo office served for real; an admin and a staff person who sign in."""
    data = tmp_path_factory.mktemp("browser-var")
    port = free_port()
    settings = Settings(
        data_dir=data,
        operator_token="browser-operator",
        base_url=f"http://127.0.0.1:{port}",
        scheduler_interval=0.5,
        pms_allowed_hosts=("127.0.0.1",),  # the PMS fakes some pages are shown with
    )
    ctx = build_components(settings)
    practice, admin_token = seed_demo(ctx)
    accounts.invite_user(
        ctx,
        practice_id=practice.id,
        name="Robin Front",
        email=ADMIN_EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor="operator",
    )
    accounts.invite_user(
        ctx,
        practice_id=practice.id,
        name="Sam Assistant",
        email=STAFF_EMAIL,
        role=Role.STAFF,
        password=PASSWORD,
        actor="operator",
    )
    app = create_app(ctx)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "the server did not start"
    yield Server(f"http://127.0.0.1:{port}", ctx, practice.id, admin_token)
    uv.should_exit = True
    thread.join(10)
    ctx.store.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (make test installs it)"
        if IN_CI:
            pytest.fail(message + "; CI=true: the browser tests must run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """Console errors and failed requests seen in the page."""

    seen: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> None:
        """A problem this test provokes on purpose (e.g. a 401 for a wrong password)."""
        self.expected.append(fragment)

    def unexpected(self) -> list[str]:
        return [s for s in self.seen if not any(e in s for e in self.expected)]


@dataclass
class Browse:
    page: Any
    server: Server
    problems: PageProblems
    shots: Path

    def go(self, path: str) -> Any:
        return self.page.goto(self.server.url + path)

    def sign_in(self, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> None:
        self.go("/signin")
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def sandbox_mailbox(self) -> list[dict[str, Any]]:
        """The messages the sandbox kept instead of sending, newest first."""
        response = httpx.get(
            self.server.url + "/v1/sandbox/mailbox",
            headers={"Authorization": f"Bearer {self.server.admin_token}"},
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def download_csv(self, selector: str) -> tuple[str, list[list[str]]]:
        """Click a download link; the file's suggested name and its rows."""
        with self.page.expect_download() as info:
            self.page.click(selector)
        download = info.value
        saved = self.shots / download.suggested_filename
        download.save_as(saved)
        with saved.open(newline="", encoding="utf-8") as f:
            return download.suggested_filename, list(csv.reader(f))

    def shot(self, name: str, *, full: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full)
        return path


@pytest.fixture
def browse(
    browser: Any, server: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Browse]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = PageProblems()
    page.on(
        "console",
        lambda m: (
            problems.seen.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: problems.seen.append(f"page error: {e}"))
    page.on(
        "requestfailed",
        lambda r: (
            None
            if "ERR_ABORTED" in str(r.failure)  # a poll cut short by a navigation
            else problems.seen.append(f"request failed: {r.url} {r.failure}")
        ),
    )
    b = Browse(page, server, problems, tmp_path)
    yield b
    b.shot(request.node.name)
    context.close()
    assert not problems.unexpected(), problems.unexpected()
