"""Auditors made without HTTP: `payledger user create --role auditor|platform-auditor`."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.practices import DepositAccount, PmsKind
from services.app.practices import create_practice
from services.asgi import create_app
from services.bootstrap import build_components
from services.cli import main
from services.settings import Settings


def test_a_platform_auditor_from_the_cli_reads_every_practice_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "var", run_scheduler=False)
    ctx = build_components(settings)
    ids = [
        create_practice(
            ctx,
            name=name,
            timezone="America/Chicago",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "1234"),
            batch_cutoff=time(23, 59),
            actor="operator",
        ).id
        for name in ("Elm Dental", "Oak Dental")
    ]
    ctx.store.close()
    data = ["--data-dir", str(settings.data_dir)]

    # A platform auditor belongs to no practice; a practice auditor needs one.
    refused = main([*data, "user", "create", "--name", "P", "--role", "platform-auditor",
                    "--practice", str(ids[0])])  # fmt: skip
    assert refused == 2 and "omit --practice" in capsys.readouterr().err
    assert main([*data, "user", "create", "--name", "A", "--role", "auditor"]) == 2
    assert "--practice" in capsys.readouterr().err

    assert main([*data, "user", "create", "--name", "Pat", "--role", "platform-auditor"]) == 0
    out = capsys.readouterr().out
    assert "(platform-auditor)" in out
    token = out.split("token ", 1)[1].split()[0]

    again = build_components(settings)
    client = TestClient(create_app(again, scheduler=False), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    for practice_id, name in zip(ids, ("Elm Dental", "Oak Dental"), strict=True):
        answer = client.get(f"/v1/practices/{practice_id}", headers=auth)
        assert answer.status_code == 200 and answer.json()["name"] == name
        listed = client.get("/v1/transactions", headers={**auth, "X-Practice-Id": str(practice_id)})
        assert listed.status_code == 200, listed.text
    write = client.patch(f"/v1/practices/{ids[0]}/settings", json={"fee_rate_bps": 1}, headers=auth)
    assert write.status_code == 403 and "never change anything" in write.json()["detail"]
    again.store.close()


def test_replay_prints_checksums_and_verify_names_a_changed_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.app.demo import seed_demo

    settings = Settings(data_dir=tmp_path / "var", run_scheduler=False)
    ctx = build_components(settings)
    seed_demo(ctx)
    ctx.store.close()
    data = ["--data-dir", str(settings.data_dir)]

    assert main([*data, "replay", "--verify"]) == 0
    verified = capsys.readouterr()
    lines = verified.out.splitlines()
    assert len(lines) == 10 and all(line.endswith("ok") for line in lines), verified.out
    assert "events/s" in verified.err and "ETA" in verified.err
    checksums = {line.split()[0]: line.split()[1] for line in lines}

    assert main([*data, "replay", "--projection", "transactions"]) == 0
    rebuilt = capsys.readouterr().out.split()
    assert rebuilt[0] == "transactions" and rebuilt[1] == checksums["transactions"]

    assert main([*data, "replay", "--projection", "nope"]) == 2
    assert "one of: all, directory" in capsys.readouterr().err

    again = build_components(settings)
    with again.store.database().transaction() as tx:
        tx.execute("UPDATE deposits SET net_amount = net_amount + 1 WHERE rowid = 1")
    again.store.close()
    assert main([*data, "replay", "--verify"]) == 1
    out = capsys.readouterr().out
    assert "deposits" in out and "DIFFERS" in out
    assert "differs: deposits.deposits, only in the live view" in out
    assert "differs: deposits.deposits, only in the replay" in out
