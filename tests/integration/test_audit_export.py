"""The audit export: an auditor downloads a practice's history, `payledger audit verify`
checks it away from the service and gets the live checksums; one changed character, a
removed line or a cut-short file is named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from services.app.audit_export import verify_lines
from services.cli import main
from tests.conftest import Api, PinnedClock
from tests.e2e.support import new_patient, paid, second_practice


def auditor(api: Api) -> dict[str, str]:
    answer = api.post(
        f"/v1/practices/{api.practice_id}/users", {"name": "Ada Auditor", "role": "auditor"}
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def some_history(api: Api, clock: PinnedClock) -> None:
    patient = new_patient(api)
    first = paid(api, 12500, patient_id=patient["id"])
    other = second_practice(api)
    paid(other, 999)  # another practice's events stay out of this export
    api.advance(2 * 86400)
    assert api.post(f"/v1/payments/{first['id']}/refund", {"amount": 2500}).status_code == 200
    clock.move(hours=1)
    balance = api.client.put(
        f"/v1/patients/{patient['id']}/balance", json={"total": 40000}, headers=api.admin
    )
    assert balance.status_code == 200, balance.text
    request = api.post(
        "/v1/payment-requests",
        {"patient_id": patient["id"], "amount": 4000, "channel": "email"},
    )
    assert request.status_code == 201, request.text


def download(api: Api, tmp_path: Path, headers: dict[str, str], **params: str) -> Path:
    answer = api.client.get("/v1/audit/export", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in answer.headers["content-disposition"]
    path = tmp_path / "export.jsonl"
    path.write_text(answer.text, encoding="utf-8")
    return path


def verify(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = main(["audit", "verify", str(path)])
    return code, capsys.readouterr().out


def test_an_auditor_exports_and_verifies_with_the_live_checksums(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = api_for(backend, clock).setup()
    some_history(api, clock)
    path = download(api, tmp_path, auditor(api))
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line)["event"] for line in lines[:-1]]
    end = json.loads(lines[-1])["end"]

    assert {e["practice_id"] for e in events} == {api.practice_id}
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert end["count"] == len(events) and end["last_hash"] == json.loads(lines[-2])["hash"]
    assert "PaymentCaptured" in {e["type"] for e in events}
    assert all("token_hash" not in e["data"] for e in events)
    feed = api.get("/v1/events", params={"limit": 100}).json()["items"]
    assert [e["event_id"] for e in events] == [f["id"] for f in feed]

    code, out = verify(capsys, path)
    assert code == 0, out
    assert out.startswith(f"ok: {len(events)} events, chain intact")
    live = api.get("/v1/audit/checksums").json()["views"]
    assert end["checksums"] == {name: v["checksum"] for name, v in live.items()}
    for name, v in live.items():
        assert f"{name:<18} {v['checksum']}  matches" in out


def mutate(text: str, column: int) -> str:
    """One character changed: a digit to the next digit, a letter to another letter."""
    old = text[column]
    new = str((int(old) + 1) % 10) if old.isdigit() else ("b" if old != "b" else "c")
    return text[:column] + new + text[column + 1 :]


def test_one_changed_character_is_named_by_its_line(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = api_for("sqlite", clock).setup()
    some_history(api, clock)
    path = download(api, tmp_path, api.admin)
    original = path.read_text(encoding="utf-8").splitlines()
    assert verify_lines(original).ok

    targets = {
        "an amount": (3, '"amount":'),
        "an actor": (2, '"actor":"'),
        "a hash": (5, '"hash":"'),
        "the previous hash": (4, '"prev_hash":"'),
        "a checksum in the closing line": (len(original), '"directory":"'),
    }
    for what, (number, marker) in targets.items():
        lines = list(original)
        text = lines[number - 1]
        if marker not in text:  # this line has no such field: take the first event line that has
            number = next(i for i, t in enumerate(original, 1) if marker in t)
            text = lines[number - 1]
        lines[number - 1] = mutate(text, text.index(marker) + len(marker) + 1)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        code, out = verify(capsys, path)
        assert code == 1, (what, out)
        assert out.startswith(f"FAILED: line {number}:"), (what, out)

    # A line taken out, and a file cut short.
    path.write_text("\n".join(original[:2] + original[3:]) + "\n", encoding="utf-8")
    code, out = verify(capsys, path)
    assert code == 1 and out.startswith("FAILED: line 3: does not follow the line before it")
    path.write_text("\n".join(original[:-1]) + "\n", encoding="utf-8")
    code, out = verify(capsys, path)
    assert code == 1 and "the closing line is missing" in out


def test_an_export_until_an_instant_holds_what_had_happened_by_then(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = api_for("sqlite", clock).setup()
    paid(api, 1000)
    cut = clock.current
    clock.move(minutes=5)
    paid(api, 2000)
    path = download(api, tmp_path, api.admin, until=cut.isoformat())
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line)["event"] for line in lines[:-1]]
    amounts = [e["data"]["amount"] for e in events if e["type"] == "PaymentCaptured"]
    assert amounts == [1000]
    code, out = verify(capsys, path)
    assert code == 0, out
    everything = download(api, tmp_path, api.admin).read_text(encoding="utf-8").splitlines()
    assert (
        json.loads(everything[-1])["end"]["checksums"] != json.loads(lines[-1])["end"]["checksums"]
    )


def test_the_cli_export_is_the_api_export(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = api_for("sqlite", clock).setup()
    some_history(api, clock)
    over_http = download(api, tmp_path, api.admin).read_text(encoding="utf-8")
    data = str(tmp_path / "var")
    assert main(["--data-dir", data, "audit", "export", "--practice", api.practice_id]) == 0
    assert capsys.readouterr().out == over_http
    assert main(["audit", "verify", str(tmp_path / "missing.jsonl")]) == 2
