"""Two-step sign-in, sessions that end when a person's sign-in changes, and the security
log, on SQLite and PostgreSQL.

Dana (admin) and Sam (staff) of Elm Dental sign in; codes are computed here from the
secret the enrolment shows, as the person's phone would.
"""

from __future__ import annotations

import pyotp
import pytest

from domain.errors import Conflict, InvalidValue
from domain.practices import Practice
from domain.users import Role, SecurityKind, User
from services.app import accounts, second_factor
from services.app.accounts import CodeNeeded, SignInRefused, WebSession
from services.app.practices import change_settings
from services.app.security_log import read_log
from services.context import Components
from tests.conftest import PinnedClock
from tests.integration.test_accounts import HERE, PASSWORD, person, practice, refusal


def enrolled(ctx: Components, user: User) -> tuple[pyotp.TOTP, list[str]]:
    """Turn on two-step sign-in for the person: their app's codes and recovery codes."""
    enrolment = second_factor.start_enrolment(ctx, user.id)
    assert enrolment.qr_svg.startswith("<svg") and enrolment.secret in enrolment.uri
    app = pyotp.TOTP(enrolment.secret)
    codes, _ = second_factor.confirm_enrolment(ctx, user.id, app.at(ctx.clock.now()), HERE)
    return app, codes


def code_step(ctx: Components, email: str = "dana@elm.example") -> CodeNeeded:
    outcome = accounts.sign_in(ctx, email, PASSWORD, HERE)
    assert isinstance(outcome, CodeNeeded), outcome
    return outcome


def kinds(ctx: Components, elm: Practice) -> list[str]:
    return [str(e["kind"]) for e in read_log(ctx, elm.id, limit=100).items]


def test_a_code_is_accepted_once_and_a_recovery_code_once(
    ctx: Components, clock: PinnedClock
) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    app, recovery = enrolled(ctx, dana)
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert ctx.find(User, dana.id).two_factor_since == clock.now()  # type: ignore[union-attr]

    # The password alone no longer opens a session.
    pending = code_step(ctx)
    wrong = refusal(lambda: second_factor.sign_in_code(ctx, pending.token, "000000", HERE))
    assert "code is not right" in str(wrong)
    # The code that confirmed the enrolment was used: the same step again is refused.
    replayed = app.at(clock.now())
    refusal(lambda: second_factor.sign_in_code(ctx, pending.token, replayed, HERE))

    clock.move(seconds=30)
    fresh = app.at(clock.now())
    session = second_factor.sign_in_code(ctx, code_step(ctx).token, fresh, HERE)
    assert accounts.session_user(ctx, session.token) is not None
    # Seen over a shoulder and typed again within its step: refused.
    refusal(lambda: second_factor.sign_in_code(ctx, code_step(ctx).token, fresh, HERE))

    # A recovery code works once (typed in capitals and without its dash, too).
    typed = recovery[3].upper().replace("-", "")
    assert second_factor.sign_in_code(ctx, code_step(ctx).token, typed, HERE).token
    refusal(lambda: second_factor.sign_in_code(ctx, code_step(ctx).token, recovery[3], HERE))
    assert second_factor.recovery_codes_left(ctx, dana.id) == 9
    log = read_log(ctx, elm.id, kind=SecurityKind.RECOVERY_CODE_USED).items
    assert [e["detail"] for e in log] == ["9 left"]
    signed_in = read_log(ctx, elm.id, kind=SecurityKind.SIGN_IN).items
    assert {e["detail"] for e in signed_in} == {
        "password and a code",
        "password and a recovery code",
    }


def test_a_forged_or_stale_code_step_is_refused(ctx: Components, clock: PinnedClock) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    app, _ = enrolled(ctx, dana)
    clock.move(seconds=30)
    pending = code_step(ctx)
    forged = pending.token.replace(str(dana.id)[:4], "0000", 1)
    refusal(lambda: second_factor.sign_in_code(ctx, forged, app.at(clock.now()), HERE))
    # The password changed meanwhile: the step that followed the old one is over.
    accounts.set_password(ctx, elm.id, dana.id, "another long secret", "operator")
    stale = refusal(
        lambda: second_factor.sign_in_code(ctx, pending.token, app.at(clock.now()), HERE)
    )
    assert "sign in again" in str(stale)
    clock.move(minutes=11)
    late = code_step_with(ctx, "another long secret")
    clock.move(minutes=11)
    refusal(lambda: second_factor.sign_in_code(ctx, late.token, app.at(clock.now()), HERE))


def code_step_with(ctx: Components, password: str) -> CodeNeeded:
    outcome = accounts.sign_in(ctx, "dana@elm.example", password, HERE)
    assert isinstance(outcome, CodeNeeded)
    return outcome


def test_wrong_codes_count_towards_the_lockout(ctx: Components, clock: PinnedClock) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    app, _ = enrolled(ctx, dana)
    clock.move(seconds=30)
    pending = code_step(ctx)
    for guess in range(5):
        refusal(lambda g=guess: second_factor.sign_in_code(ctx, pending.token, f"12345{g}", HERE))
    locked = refusal(
        lambda: second_factor.sign_in_code(ctx, pending.token, app.at(clock.now()), HERE)
    )
    assert locked.retry_at is not None and "Too many" in str(locked)
    # ... and the password too, for the same email
    assert refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)).retry_at
    assert kinds(ctx, elm).count("sign-in-failed") == 5
    assert kinds(ctx, elm).count("locked-out") == 1


def test_turning_it_off_takes_the_password_and_a_code(ctx: Components, clock: PinnedClock) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    app, _ = enrolled(ctx, dana)
    clock.move(seconds=30)
    with pytest.raises(SignInRefused):
        second_factor.turn_off(ctx, dana.id, "not the password", app.at(clock.now()), HERE)
    second_factor.turn_off(ctx, dana.id, PASSWORD, app.at(clock.now()), HERE)
    assert ctx.find(User, dana.id).two_factor_since is None  # type: ignore[union-attr]
    assert ctx.accounts.second_factor(dana.id) is None
    assert isinstance(accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE), WebSession)


def test_an_admin_resets_another_persons_second_factor(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    sam, _ = person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    enrolled(ctx, sam)
    with pytest.raises(Conflict, match="cannot reset your own"):
        second_factor.reset(ctx, elm.id, dana.id, f"user:{dana.id}")
    second_factor.reset(ctx, elm.id, sam.id, f"user:{dana.id}", HERE)
    assert isinstance(accounts.sign_in(ctx, "sam@elm.example", PASSWORD, HERE), WebSession)
    reset = read_log(ctx, elm.id, kind=SecurityKind.TWO_FACTOR_RESET).items
    assert [(e["actor"], e["user_id"]) for e in reset] == [(f"user:{dana.id}", str(sam.id))]


def test_a_wrong_code_at_enrolment_leaves_it_off(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    enrolment = second_factor.start_enrolment(ctx, dana.id)
    with pytest.raises(InvalidValue, match="code is not right"):
        second_factor.confirm_enrolment(ctx, dana.id, "123456", HERE)
    assert second_factor.pending_enrolment(ctx, dana.id) == enrolment
    assert ctx.find(User, dana.id).two_factor_since is None  # type: ignore[union-attr]
    # The secret is sealed at rest.
    stored = ctx.accounts.second_factor(dana.id)
    assert stored is not None and enrolment.secret not in stored["secret"]


def test_the_practice_may_require_it_of_admins(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    admin = accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    staff = accounts.sign_in(ctx, "sam@elm.example", PASSWORD, HERE)
    change_settings(ctx, elm.id, {"require_2fa_for_admins": True}, f"user:{dana.id}")
    assert accounts.session_user(ctx, admin.token).must_enrol  # type: ignore[union-attr]
    assert not accounts.session_user(ctx, staff.token).must_enrol  # type: ignore[union-attr]
    enrolled(ctx, dana)
    again = code_step(ctx)
    assert again.token  # enrolled: the code step, and no more enrolment asked
    with pytest.raises(InvalidValue, match="true or false"):
        change_settings(ctx, elm.id, {"require_2fa_for_admins": "yes"}, f"user:{dana.id}")


def test_sessions_end_when_the_password_role_or_second_factor_changes(
    ctx: Components, clock: PinnedClock
) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    sam, _ = person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")

    def signed_in() -> str:
        session = accounts.sign_in(ctx, "sam@elm.example", PASSWORD, HERE)
        assert isinstance(session, WebSession)
        return session.token

    def live(token: str) -> bool:
        return accounts.session_user(ctx, token) is not None

    by_admin = signed_in()
    accounts.set_password(ctx, elm.id, sam.id, PASSWORD, f"user:{dana.id}")
    assert not live(by_admin)

    elsewhere, here = signed_in(), signed_in()
    renewed = accounts.change_own_password(ctx, here, PASSWORD, "a newer long secret", HERE)
    assert not live(elsewhere) and not live(here) and live(renewed.token)
    accounts.set_password(ctx, elm.id, sam.id, PASSWORD, f"user:{dana.id}")

    role = signed_in()
    accounts.change_role(ctx, elm.id, sam.id, Role.AUDITOR, f"user:{dana.id}")
    assert not live(role)

    turned_on = signed_in()
    app, _ = enrolled(ctx, sam)
    assert not live(turned_on)
    clock.move(seconds=30)
    reset = second_factor.sign_in_code(
        ctx, code_step(ctx, "sam@elm.example").token, app.at(clock.now()), HERE
    )
    second_factor.reset(ctx, elm.id, sam.id, f"user:{dana.id}")
    assert not live(reset.token)

    ended = read_log(ctx, elm.id, kind=SecurityKind.SESSIONS_ENDED, user_id=sam.id).items
    assert sorted(e["detail"] for e in ended) == [
        "1 session: the password changed",
        "1 session: the password changed",  # the renewed one, when Dana set it back
        "1 session: the role changed",
        "1 session: two-step sign-in turned on",
        "2 sessions: the password changed",
        # the one the enrolment gave its browser, and the one signed in with a code
        "2 sessions: two-step sign-in reset",
    ]


def test_the_log_records_each_kind_and_no_secret(ctx: Components, clock: PinnedClock) -> None:
    elm = practice(ctx)
    dana, token = person(ctx, elm)
    sam, sam_token = person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    refusal(lambda: accounts.sign_in(ctx, "sam@elm.example", "wrong password!", HERE))
    for _ in range(4):
        refusal(lambda: accounts.sign_in(ctx, "sam@elm.example", "wrong password!", HERE))
    clock.move(minutes=16)
    session = accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    accounts.sign_out(ctx, session.token, HERE)
    accounts.change_role(ctx, elm.id, sam.id, Role.ADMIN, f"user:{dana.id}")
    accounts.set_password(ctx, elm.id, sam.id, "a third long secret", f"user:{dana.id}")
    app, recovery = enrolled(ctx, dana)
    clock.move(seconds=30)
    second_factor.sign_in_code(ctx, code_step(ctx).token, recovery[0], HERE)
    second_factor.turn_off(ctx, dana.id, PASSWORD, app.at(clock.now()), HERE)
    enrolled(ctx, sam_person := ctx.get(User, sam.id, elm.id))
    second_factor.reset(ctx, elm.id, sam_person.id, f"user:{dana.id}")
    accounts.revoke_user(ctx, elm.id, sam.id, f"user:{dana.id}")

    assert set(kinds(ctx, elm)) == {k.value for k in SecurityKind}
    entries = read_log(ctx, elm.id, limit=100).items
    assert all(e["at"] and e["actor"] for e in entries)
    assert {e["client_address"] for e in entries if e["kind"] == "sign-in-failed"} == {HERE}
    rows = ctx.accounts.security_log(elm.id, limit=1000)
    text = repr(rows)
    for secret in [PASSWORD, "wrong password!", "a third long secret", token, sam_token, *recovery]:
        assert secret not in text
    assert app.secret not in text


def test_the_log_is_paged_newest_first_and_kept_per_practice(
    ctx: Components, clock: PinnedClock
) -> None:
    elm, oak = practice(ctx), practice(ctx, "Oak Dental")
    person(ctx, elm)
    person(ctx, oak, "ola@oak.example", name="Ola Berg")
    for _ in range(5):
        clock.move(seconds=1)
        accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    first = read_log(ctx, elm.id, kind=SecurityKind.SIGN_IN, limit=3)
    assert first.next_after is not None
    rest = read_log(ctx, elm.id, kind=SecurityKind.SIGN_IN, after=first.next_after, limit=3)
    times = [e["at"] for e in first.items + rest.items]
    assert len(times) == 5 and times == sorted(times, reverse=True) and rest.next_after is None
    theirs = read_log(ctx, oak.id, limit=100).items
    assert [e["user_name"] for e in theirs] == ["Ola Berg"]  # the token made at the invitation


def test_the_log_cannot_be_changed(ctx: Components) -> None:
    elm = practice(ctx)
    person(ctx, elm)
    database = ctx.store.database()
    with pytest.raises(Exception, match="append-only"), database.transaction() as tx:
        tx.execute("UPDATE security_log SET detail = 'edited'")
    with pytest.raises(Exception, match="append-only"), database.transaction() as tx:
        tx.execute("DELETE FROM security_log")
    assert len(read_log(ctx, elm.id).items) == 1
