"""Over HTTP: an old session cookie after a change of password or role gets the sign-in
page (and 401 for the dashboard's own requests); a practice that requires two-step
sign-in sends its admins to enrol first; the security log's API and who may read it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from domain.users import Role
from tests.conftest import Api
from tests.e2e.test_html_pages import PASSWORD, person


def signed_in(api: Api, email: str, password: str = PASSWORD) -> TestClient:
    web = TestClient(api.client.app, base_url="http://127.0.0.1")
    form = web.get("/signin").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    answer = web.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return web


def page(web: TestClient, path: str = "/payments/transactions") -> tuple[int, str]:
    answer = web.get(path, follow_redirects=False)
    return answer.status_code, answer.headers.get("location", "")


def fragment(web: TestClient) -> int:
    return web.get("/payments/badge", headers={"HX-Request": "true"}).status_code


def test_old_sessions_get_the_sign_in_page_after_a_password_or_role_change(api: Api) -> None:
    robin = person(api, "robin@elm.example", Role.ADMIN)
    users = f"/v1/practices/{api.practice_id}/users/{robin}"
    old = signed_in(api, "robin@elm.example")
    assert page(old)[0] == 200 and fragment(old) == 200

    assert api.client.put(
        users + "/password", json={"password": "another-long-one"}, headers=api.admin
    ).is_success
    assert page(old) == (303, "/signin?next=/payments/transactions")
    assert fragment(old) == 401

    # By themselves: the browser that changed it goes on, another one is signed out.
    here = signed_in(api, "robin@elm.example", "another-long-one")
    there = signed_in(api, "robin@elm.example", "another-long-one")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', here.get("/account").text)
    assert csrf is not None
    changed = here.post(
        "/account/password",
        data={
            "csrf_token": csrf.group(1),
            "current_password": "another-long-one",
            "new_password": PASSWORD,
            "repeat_password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/account"
    assert page(here)[0] == 200
    assert page(there)[0] == 303

    assert api.client.patch(users, json={"role": "auditor"}, headers=api.admin).is_success
    assert page(here)[0] == 303 and fragment(here) == 401


def test_a_practice_may_require_admins_to_enrol_before_any_page(api: Api) -> None:
    person(api, "robin@elm.example", Role.ADMIN)
    person(api, "sam@elm.example")
    settings = f"/v1/practices/{api.practice_id}/settings"
    answer = api.client.patch(settings, json={"require_2fa_for_admins": True}, headers=api.admin)
    assert answer.status_code == 200 and answer.json()["require_2fa_for_admins"] is True
    robin = signed_in(api, "robin@elm.example")
    assert page(robin) == (303, "/account")
    assert page(robin, "/settings") == (303, "/account")
    assert "asks every admin to use two-step sign-in" in robin.get("/account").text
    assert page(signed_in(api, "sam@elm.example"), "/account")[0] == 200  # staff: optional
    wrong = api.client.patch(settings, json={"require_2fa_for_admins": "yes"}, headers=api.admin)
    assert wrong.status_code == 422 and "require_2fa_for_admins" in wrong.text


def test_the_security_log_over_the_api(api: Api, api_for: object) -> None:
    robin = person(api, "robin@elm.example")
    signed_in(api, "robin@elm.example")
    log = api.get("/v1/security-log").json()
    assert {e["kind"] for e in log["items"]} >= {"token-created", "sign-in"}
    mine = api.get(f"/v1/security-log?user_id={robin}&kind=sign-in").json()["items"]
    assert [(e["user_name"], e["actor"]) for e in mine] == [("Robin", f"user:{robin}")]
    one = api.get("/v1/security-log?limit=1").json()
    assert len(one["items"]) == 1 and one["next_cursor"]
    after = api.get(f"/v1/security-log?limit=1&cursor={one['next_cursor']}").json()
    assert after["items"][0]["id"] != one["items"][0]["id"]

    assert api.get("/v1/security-log", headers=api.staff).status_code == 403
    for bad in ("limit=0", "limit=101", "kind=coffee", "user_id=robin", "cursor=nonsense"):
        answer = api.get(f"/v1/security-log?{bad}")
        assert answer.status_code in (400, 422), (bad, answer.status_code)
        assert answer.headers["content-type"].startswith("application/problem+json")

    # Another practice's admin sees only their own practice's entries.
    other = api.new_practice(name="Oak Dental")
    oak_admin = api.new_user(other["id"])
    theirs = api.get("/v1/security-log", headers=oak_admin).json()["items"]
    assert theirs and all(e["user_id"] != str(robin) for e in theirs)


def test_an_admin_resets_two_step_sign_in_over_the_api(api: Api) -> None:
    robin = person(api, "robin@elm.example")
    users = f"/v1/practices/{api.practice_id}/users"
    reset = api.client.delete(f"{users}/{robin}/two-factor", headers=api.admin)
    assert reset.status_code == 200
    assert reset.json()["two_factor"] == {"enabled": False, "since": None}
    refused = api.client.delete(f"{users}/{robin}/two-factor", headers=api.staff)
    assert refused.status_code == 403
