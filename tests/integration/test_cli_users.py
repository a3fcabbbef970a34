"""People made without HTTP: `payledger user create` and the demo office's sign-ins."""

from __future__ import annotations

import io
import stat
from datetime import time
from pathlib import Path

import pytest

from domain.practices import DepositAccount, PmsKind
from domain.users import Role
from services.app import accounts
from services.app.demo import CREDENTIALS_FILE, demo_people, demo_practice_id
from services.app.practices import create_practice
from services.cli import main
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_user_create_with_an_email_and_a_password_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(tmp_path / "var")
    practice_id = run(
        capsys,
        "--data-dir",
        data,
        "practice",
        "create",
        "--name",
        "Elm Dental",
        "--timezone",
        "America/Chicago",
        "--pms",
        "dentrix",
        "--deposit-last4",
        "1234",
    ).strip()
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    out = run(
        capsys,
        "--data-dir",
        data,
        "user",
        "create",
        "--practice",
        practice_id,
        "--name",
        "Dana Reyes",
        "--role",
        "admin",
        "--email",
        "Dana@Elm.example",
        "--password-stdin",
    )
    assert "(admin, signs in as dana@elm.example)" in out and "token plt_" in out
    assert "correct horse battery" not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    sam = ["--name", "Sam", "--email", "sam@elm.example", "--password-stdin"]
    refused = main(["--data-dir", data, "user", "create", "--practice", practice_id, *sam])
    assert refused == 2
    assert "at least 10 characters" in capsys.readouterr().err


def test_signing_in_with_what_the_cli_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.bootstrap import build_components
    from services.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", run_scheduler=False)
    ctx = build_components(settings)
    elm = create_practice(
        ctx,
        name="Elm Dental",
        timezone="America/Chicago",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=time(23, 59),
        actor="operator",
    )
    ctx.store.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    run(
        capsys,
        "--data-dir",
        str(settings.data_dir),
        "user",
        "create",
        "--practice",
        str(elm.id),
        "--name",
        "Dana",
        "--email",
        "dana@elm.example",
        "--password-stdin",
    )
    again = build_components(settings)
    session = accounts.sign_in(again, "dana@elm.example", "correct horse battery", "127.0.0.1")
    user = accounts.session_user(again, session.token)
    assert user is not None and user.caller.role == Role.ADMIN
    again.store.close()


def demo_office(ctx: Components) -> None:
    """The demo practice alone (its id comes from the key the demo uses), without history."""
    create_practice(
        ctx,
        name="Maple Street Dental",
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "6789"),
        batch_cutoff=time(23, 59),
        actor="system:demo",
        key="demo-practice",
    )


def test_the_demo_people_get_passwords_once_kept_in_a_private_file(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    demo_office(ctx)
    people = demo_people(ctx)
    assert [(p.email, p.role) for p in people] == [
        ("admin@maplestreetdental.example", Role.ADMIN),
        ("staff@maplestreetdental.example", Role.STAFF),
    ]
    path = ctx.settings.data_dir / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for person in people:
        assert len(person.password) >= 10 and person.password in path.read_text()
        assert accounts.sign_in(ctx, person.email, person.password, "127.0.0.1").token
    # Later starts find the same people and passwords.
    assert demo_people(ctx) == people
    assert len(accounts.list_users(ctx, demo_practice_id())) == 2


def test_a_lost_credentials_file_gives_new_passwords(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("sqlite", clock)
    demo_office(ctx)
    first = demo_people(ctx)
    (ctx.settings.data_dir / CREDENTIALS_FILE).unlink()
    second = demo_people(ctx)
    assert [p.email for p in second] == [p.email for p in first]
    assert all(a.password != b.password for a, b in zip(first, second, strict=True))
    admin = second[0]
    assert accounts.sign_in(ctx, admin.email, admin.password, "127.0.0.1").token
    with pytest.raises(accounts.SignInRefused):
        accounts.sign_in(ctx, admin.email, first[0].password, "127.0.0.1")


def test_every_start_prints_the_same_demo_token_and_adds_no_user(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    from services.app.demo import seed_demo

    ctx = make_components("sqlite", clock)
    demo_office(ctx)
    _, first = seed_demo(ctx)
    _, second = seed_demo(ctx)
    assert first == second
    names = [u.name for u in accounts.list_users(ctx, demo_practice_id())]
    assert names.count("Demo API token") == 1
