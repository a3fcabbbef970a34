"""The `payledger` command: serve the API, set up practices and users without HTTP."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias
from uuid import UUID

from domain.errors import PaymentsError
from domain.money import format_dollars
from domain.practices import DepositAccount, PmsKind, Practice
from domain.schedule import parse_cutoff
from domain.users import PLATFORM, Role
from services.bootstrap import (
    build_components,
    build_relay,
    build_writeback_consumer,
    migrate_database,
)
from services.settings import Settings

if TYPE_CHECKING:
    from projections.replay import Verification
    from services.context import Components


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        result: int = args.run(args)
        return result
    except PaymentsError as error:
        field = f" ({error.field})" if error.field else ""
        print(f"error{field}: {error.detail}", file=sys.stderr)
        return 2


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "port", None) and not os.environ.get("PAYLEDGER_BASE_URL"):
        # links sent to patients (pay links, receipts) point where this process serves
        wildcard = args.host in ("", "::") or args.host == ".".join(["0"] * 4)
        host = "127.0.0.1" if wildcard else args.host
        overrides["base_url"] = f"http://{host}:{args.port}"
    return Settings.from_env(None, **overrides)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from services.asgi import create_app

    settings = settings_from(args)
    ctx = build_components(settings)
    url = f"http://{args.host}:{args.port}"
    if args.demo:
        seed_and_greet(ctx, url)
    else:
        print(f"\n  payledger at {url} (docs at {url}/docs)\n", flush=True)
    store = (settings.database_url and "PostgreSQL") or f"SQLite at {settings.sqlite_path}"
    print(f"  store: {store}; sandbox: {'on' if settings.sandbox else 'off'}\n", flush=True)
    uvicorn.run(
        create_app(ctx),
        host=args.host,
        port=args.port,
        log_level="info",
        loop=args.loop,
        http=args.http,
        **proxy_options(settings),
    )
    return 0


def seed_and_greet(ctx: Components, url: str) -> None:
    """`serve --demo`: the demo office (made on the first run), then how to sign in."""
    from services.app.demo import demo_people, seed_demo

    print("Seeding demo data (first run only)...", flush=True)
    logging.getLogger("payledger").setLevel(logging.WARNING)
    practice, token = seed_demo(ctx)
    people = demo_people(ctx)
    logging.getLogger("payledger").setLevel(logging.INFO)
    sign_ins = "".join(
        f"  Sign in at {url}/ as {p.email} / {p.password} ({p.role.value})\n" for p in people
    )
    print(
        f"\n  payledger is serving {practice.name} at {url}\n"
        f"{sign_ins}"
        f"  API docs:    {url}/docs\n"
        f"  Admin token: {token}\n"
        f"  Try:         curl -H 'Authorization: Bearer {token}' {url}/v1/transactions\n",
        flush=True,
    )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's handling of X-Forwarded-For: only from the proxies the operator names
    (PAYLEDGER_TRUSTED_PROXIES). uvicorn's own default trusts 127.0.0.1, which would let
    any local client choose the address its sign-in and pay-page attempts count on."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def practice_create(args: argparse.Namespace) -> int:
    from services.app.practices import create_practice

    ctx = build_components(settings_from(args))
    practice = create_practice(
        ctx,
        name=args.name,
        timezone=args.timezone,
        pms=PmsKind(args.pms),
        auto_writeback=args.auto_writeback,
        deposit_account=DepositAccount(args.deposit_kind, args.deposit_last4),
        batch_cutoff=parse_cutoff(args.cutoff),
        actor="operator:cli",
    )
    print(practice.id)
    return 0


def practice_stripe_account(args: argparse.Namespace) -> int:
    """The operator's connection of a practice to its Stripe account (as PUT
    /v1/practices/{id}/stripe-account with the operator token): an account another
    practice holds is refused."""
    from services.app.practices import connect_stripe_account

    ctx = build_components(settings_from(args))
    account = None if args.disconnect else args.account
    practice = connect_stripe_account(ctx, args.practice, account, "operator:cli")
    print(f"{practice.name}: Stripe account {practice.stripe_account or 'none'}")
    return 0


def practice_clearent_key(args: argparse.Namespace) -> int:
    """The operator sets a practice's Clearent API key (as PUT
    /v1/practices/{id}/clearent-key): read from standard input, never from the command
    line (which other users of the machine can see); kept sealed."""
    from pydantic import ValidationError

    from services.app.inputs import ClearentKeyIn
    from services.app.practices import set_clearent_key

    key = None if args.remove else sys.stdin.readline().strip()
    try:
        ClearentKeyIn(api_key=key)  # the same check as the API's
    except ValidationError:
        print(
            "error (api_key): the key on standard input must be 8 to 200 letters, digits, "
            "- or _ (as Clearent's virtual terminal shows it)",
            file=sys.stderr,
        )
        return 2
    ctx = build_components(settings_from(args))
    connected = set_clearent_key(ctx, args.practice, key, "operator:cli")
    print(f"practice {args.practice}: Clearent API key {'kept' if connected else 'removed'}")
    return 0


def user_create(args: argparse.Namespace) -> int:
    from services.app.accounts import invite_user

    role = Role(args.role)
    if (role == Role.PLATFORM_AUDITOR) == (args.practice is not None):
        print(
            "error: name the user's practice with --practice; a platform-auditor belongs to "
            "no practice (omit --practice)",
            file=sys.stderr,
        )
        return 2
    password = read_password(sys.stdin) if args.password_stdin else None
    ctx = build_components(settings_from(args))
    user, token = invite_user(
        ctx,
        practice_id=args.practice or PLATFORM,
        name=args.name,
        email=args.email,
        role=role,
        password=password,
        actor="operator:cli",
    )
    signs_in = f", signs in as {user.email}" if user.email else ""
    print(
        f"user {user.id} ({user.role.value}{signs_in})\ntoken {token}\n"
        "(the token is shown only now; it is stored hashed)"
    )
    return 0


def read_password(stream: TextIO) -> str:
    """The first line of standard input, without its line ending."""
    return stream.readline().rstrip("\r\n")


def run_projections(args: argparse.Namespace) -> int:
    """The views' runners in a process of their own (production: the API processes are
    started with PAYLEDGER_RUN_VIEWS=0 and wait for the positions these commit)."""
    # built as an API process is (its projector applies nothing), then the runners of
    # the roles asked for are made to run here
    ctx = build_components(replace(settings_from(args), run_views=False))
    projector = ctx.projector.only(args.role or ["view", "work", "intake"])
    names = ", ".join(p.name for p in projector.projections) or "none"
    print(f"projections: running {names}", flush=True)
    projector.catch_up_quietly()  # a view new on a long log is built in memory first
    projector.start(interval=args.interval)

    def until(stop: threading.Event) -> None:
        stop.wait()
        projector.stop()

    return run_until_stopped(until)


def rebuild(args: argparse.Namespace) -> int:
    ctx = build_components(settings_from(args))
    names = [args.name] if args.name else [p.name for p in ctx.projector.projections]
    for name in names:
        ctx.projector.rebuild(name)
        print(f"rebuilt {name} at position {ctx.projector.position(name)}")
    return 0


def replay_command(args: argparse.Namespace) -> int:
    """Rebuild (or, with --verify, replay beside) the views with a progress bar; print a
    checksum per view; with --verify, every row that differs (exit 1 when any does)."""
    from projections.catalog import all_projections

    views = all_projections()
    if args.projection != "all":
        views = [p for p in views if p.name == args.projection]
        if not views:
            names = ", ".join(p.name for p in all_projections())
            print(f"error: no view {args.projection!r}; one of: all, {names}", file=sys.stderr)
            return 2
    ctx = build_components(settings_from(args))
    try:
        if args.verify:
            with progress_bar("verifying") as advance:
                result = ctx.views.verify(views, advance)
            print_verified(result, args.max_differences)
            return 0 if result.ok else 1
        with progress_bar("replaying") as advance:
            ctx.views.rebuild(views, advance)
        print_checksums(ctx.views.checksums(views))
        return 0
    finally:
        ctx.store.close()


@contextmanager
def progress_bar(doing: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error; yields what moves it (position, last position)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(doing, total=1, rate="-")

        def advance(position: int, last: int) -> None:
            bar.update(task, completed=position, total=max(last, 1))
            elapsed = bar.tasks[0].elapsed or 0
            if elapsed > 0:
                bar.update(task, rate=f"{position / elapsed:,.0f}")

        yield advance


def print_verified(result: Verification, max_differences: int) -> None:
    """Each view's checksum, live beside replayed, then the rows that differ."""
    for name, live in result.live.items():
        same = "ok" if live["checksum"] == result.replayed[name] else "DIFFERS"
        print(f"{name:<18} {live['checksum']}  {live['rows']:>9} rows  "
              f"at {live['position']}  {same}")  # fmt: skip
    for d in result.differences[:max_differences]:
        where = "only in the live view" if d.side == "live" else "only in the replay"
        print(f"differs: {d.view}.{d.table}, {where}: {d.row}")
    if len(result.differences) > max_differences:
        print(f"... and {len(result.differences) - max_differences} more rows differ")


def print_checksums(checksums: dict[str, dict[str, Any]]) -> None:
    for name, answer in checksums.items():
        print(f"{name:<18} {answer['checksum']}  {answer['rows']:>9} rows  "
              f"at {answer['position']}")  # fmt: skip


def audit_export(args: argparse.Namespace) -> int:
    from services.app.audit_export import export_lines

    ctx = build_components(settings_from(args))
    try:
        for chunk in export_lines(ctx, args.practice, args.until):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    finally:
        ctx.store.close()
    return 0


def audit_verify(args: argparse.Namespace) -> int:
    from services.app.audit_export import verify_lines

    path = Path(args.file)
    if not path.is_file():
        print(f"error: no file {args.file}", file=sys.stderr)
        return 2
    with path.open(encoding="utf-8") as lines:
        verdict = verify_lines(lines)
    if verdict.ok:
        print(f"ok: {verdict.count} events, chain intact, last hash {verdict.last_hash}")
        for name, checksum in sorted(verdict.checksums.items()):
            print(f"{name:<18} {checksum}  matches")
        return 0
    for error in verdict.errors:
        print(f"FAILED: {error}")
    return 1


def migrate(args: argparse.Namespace) -> int:
    now, every = migrate_database(settings_from(args))
    print(f"applied {', '.join(map(str, now)) or 'nothing'}; schema at revision {max(every)}")
    return 0


def kafka_settings(args: argparse.Namespace) -> Settings:
    # these processes show no views: they neither wait for nor run the runners
    settings = replace(settings_from(args), maintain_views=False, run_views=False)
    if not settings.kafka_bootstrap:
        raise SystemExit("set PAYLEDGER_KAFKA_BOOTSTRAP (host:port of the Kafka brokers)")
    return settings


def run_until_stopped(*targets: Any, check: float = 0.5) -> int:
    """Run the loops in threads until SIGTERM or SIGINT (0). A loop that ends on its own
    (an error it did not survive) stops the others and the process (1), so that its
    supervisor starts it again rather than leave a process that works no more."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threads = [threading.Thread(target=t, args=(stop,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    ended = False
    while not stop.wait(check):
        if any(not thread.is_alive() for thread in threads):
            logging.getLogger("payledger").error("a loop of this process ended; it stops")
            ended = True
            stop.set()
    for thread in threads:
        thread.join(timeout=10)
    return 1 if ended else 0


def relay(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    assert settings.kafka_bootstrap is not None
    ctx = build_components(settings)
    print(f"relay: publishing the event log to {settings.kafka_bootstrap}", flush=True)
    return run_until_stopped(build_relay(ctx, settings.kafka_bootstrap).run)


def writeback(args: argparse.Namespace) -> int:
    settings = kafka_settings(args)
    assert settings.kafka_bootstrap is not None
    ctx = build_components(settings)
    consumer = build_writeback_consumer(ctx, args.pms, settings.kafka_bootstrap)
    print(f"writeback ({args.pms}): consumer group {consumer.group}", flush=True)
    if args.pms == "dentrix":
        print(
            "dentrix has no automatic write: its payments go to the Post to Ledger queue",
            flush=True,
        )
    return run_until_stopped(consumer.consume, consumer.work)


def daily_close(args: argparse.Namespace) -> int:
    from services.app.reports import daily_close as report
    from services.app.reports import yesterday

    ctx = build_components(settings_from(args))
    practice = ctx.get(Practice, args.practice, None)
    day = args.date or yesterday(ctx, practice)
    result = report(ctx, practice.id, day)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_daily_close(result))
    return 0 if result["balanced"] else 1


def format_daily_close(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Daily close for {r['practice_name']} on {r['date']}",
            "",
            *close_totals(r),
            "",
            *close_deposits(r),
            *close_differences(r),
        ]
    )


def close_totals(r: dict[str, Any]) -> list[str]:
    """The batch, the ledger and the PMS, one line each."""
    b, led, pms = r["batch"], r["ledger"], r["pms"]
    return [
        f"  batch   {b['sales_count']:4d} sales {format_dollars(b['gross_amount']):>14}"
        f"   {b['refunds_count']:3d} refunds {format_dollars(b['refunds_amount']):>12}"
        f"   fees {format_dollars(b['fees_amount']):>10}"
        f"   net {format_dollars(b['net_amount']):>14}",
        f"  ledger  {led['payments_count']:4d} sales {format_dollars(led['payments_amount']):>14}"
        f"   {led['refunds_count']:3d} refunds {format_dollars(led['refunds_amount']):>12}"
        f"   ({led['voided_count']} voided, {led['declined_count']} declined)",
        f"  PMS     {pms['associated_count']:4d} sales"
        f" {format_dollars(pms['associated_amount']):>14}"
        f"   {pms['refunds_written_count']:3d} refunds "
        f"{format_dollars(pms['refunds_written_amount']):>12}",
    ]


def close_deposits(r: dict[str, Any]) -> list[str]:
    return [
        f"  deposit {d['id']} on {d['deposit_date']} ({d['status']}): "
        f"{format_dollars(d['net_amount'])}"
        for d in r["batch"]["deposits"]
    ]


def close_differences(r: dict[str, Any]) -> list[str]:
    if not r["differences"]:
        return ["  balanced: no differences"]
    lines = [f"\n  {len(r['differences'])} difference(s):"]
    for diff in r["differences"]:
        ref = diff.get("payment_id") or diff.get("refund_id") or diff.get("deposit_id")
        lines.append(
            f"  - {diff['kind']}: {ref} {format_dollars(diff['amount'])}: {diff['detail']}"
        )
    return lines


def date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None


def instant_arg(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an instant such as 2026-03-04T17:00:00Z"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def uuid_arg(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a practice id (a UUID)") from None


#: the parser's subcommands, to which each `add_…_commands` adds its own
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_serve_commands(commands: Commands) -> None:
    """`serve`: the API and dashboard in one process."""
    serve_p = commands.add_parser("serve", help="serve the API and dashboard")
    serve_p.add_argument("--host", default="127.0.0.1")
    serve_p.add_argument("--port", type=int, default=8000)
    serve_p.add_argument("--data-dir", default=argparse.SUPPRESS)
    serve_p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop, installed with payledger)",
    )
    serve_p.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="HTTP parser (auto: httptools, installed with payledger)",
    )
    serve_p.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="seed a demo practice and print an admin token",
    )
    serve_p.set_defaults(run=serve)


def add_practice_commands(commands: Commands) -> None:
    """`practice create` and `practice stripe-account`."""
    practice_p = commands.add_parser("practice", help="practices").add_subparsers(
        required=True, metavar="action"
    )
    create_p = practice_p.add_parser("create", help="create a practice; prints its id")
    create_p.add_argument("--name", required=True)
    create_p.add_argument("--timezone", required=True, help="IANA name, e.g. America/Chicago")
    create_p.add_argument("--pms", required=True, choices=[k.value for k in PmsKind])
    create_p.add_argument("--deposit-kind", default="Checking")
    create_p.add_argument("--deposit-last4", required=True)
    create_p.add_argument("--cutoff", default="23:59", help="batch cut-off, HH:MM local")
    create_p.add_argument("--auto-writeback", action=argparse.BooleanOptionalAction, default=False)
    create_p.set_defaults(run=practice_create)
    stripe_p = practice_p.add_parser(
        "stripe-account",
        help="connect a practice to its Stripe account (after Stripe Connect onboarding)",
    )
    stripe_p.add_argument("--practice", type=uuid_arg, required=True)
    which = stripe_p.add_mutually_exclusive_group(required=True)
    which.add_argument("--account", help="the connected account's id, acct_...")
    which.add_argument("--disconnect", action="store_true", help="connect it to no account")
    stripe_p.set_defaults(run=practice_stripe_account)
    clearent_p = practice_p.add_parser(
        "clearent-key",
        help="set a practice's Clearent API key, read from standard input (or --remove it)",
    )
    clearent_p.add_argument("--practice", type=uuid_arg, required=True)
    clearent_p.add_argument("--remove", action="store_true", help="forget the practice's key")
    clearent_p.set_defaults(run=practice_clearent_key)


def add_user_commands(commands: Commands) -> None:
    """`user create`."""
    user_p = commands.add_parser("user", help="users").add_subparsers(
        required=True, metavar="action"
    )
    ucreate = user_p.add_parser("create", help="create a user; prints its token once")
    ucreate.add_argument(
        "--practice", type=uuid_arg, help="the user's practice (not for a platform-auditor)"
    )
    ucreate.add_argument("--name", required=True)
    ucreate.add_argument("--role", choices=[r.value for r in Role], default="admin")
    ucreate.add_argument("--email", help="the person's sign-in email (with --password-stdin)")
    ucreate.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the first password (10+ characters) from the first line of standard input",
    )
    ucreate.set_defaults(run=user_create)


def add_report_commands(commands: Commands) -> None:
    """`report daily-close`."""
    report_p = commands.add_parser("report", help="reports").add_subparsers(
        required=True, metavar="report"
    )
    close_p = report_p.add_parser(
        "daily-close", help="batch, ledger and PMS side by side; exit 1 when they differ"
    )
    close_p.add_argument("--practice", required=True, type=uuid_arg)
    close_p.add_argument(
        "--date", type=date_arg, help="YYYY-MM-DD, practice-local (default: yesterday)"
    )
    close_p.add_argument("--json", action="store_true", help="print the report as JSON")
    close_p.set_defaults(run=daily_close)


def add_workers_commands(commands: Commands) -> None:
    """`relay` and `writeback`: the worker processes beside the API."""
    relay_p = commands.add_parser("relay", help="publish the event log to Kafka")
    relay_p.set_defaults(run=relay)
    wb_p = commands.add_parser("writeback", help="write payments into one kind of PMS")
    wb_p.add_argument("--pms", required=True, choices=[k.value for k in PmsKind])
    wb_p.set_defaults(run=writeback)


def add_projections_commands(commands: Commands) -> None:
    """`projections run` and `projections rebuild`."""
    proj_p = commands.add_parser("projections", help="read models").add_subparsers(
        required=True, metavar="action"
    )
    run_p = proj_p.add_parser(
        "run", help="run the views' runners until stopped (beside API processes that do not)"
    )
    run_p.add_argument(
        "--role",
        action="append",
        choices=["view", "work", "intake"],
        help="only the runners of this role (repeatable; default: all)",
    )
    run_p.add_argument(
        "--interval",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="how often to look for new events (default 0.02: API processes wait for them)",
    )
    run_p.set_defaults(run=run_projections)
    rebuild_p = proj_p.add_parser("rebuild", help="drop and replay views from position 0")
    rebuild_p.add_argument("name", nargs="?", help="one view (default: all)")
    rebuild_p.set_defaults(run=rebuild)


def add_replay_commands(commands: Commands) -> None:
    """`replay`: rebuild or verify the views with a progress bar."""
    replay_p = commands.add_parser(
        "replay", help="rebuild the views with a progress bar and print their checksums"
    )
    replay_p.add_argument(
        "--projection", default="all", metavar="NAME", help="one view, or all (the default)"
    )
    replay_p.add_argument(
        "--verify",
        action="store_true",
        help="replay beside the live views without touching them; report rows that differ",
    )
    replay_p.add_argument("--max-differences", type=int, default=50, help=argparse.SUPPRESS)
    replay_p.set_defaults(run=replay_command)


def add_audit_commands(commands: Commands) -> None:
    """`audit export` and `audit verify`."""
    audit_p = commands.add_parser("audit", help="a practice's history as a checkable file")
    audit_cmds = audit_p.add_subparsers(required=True, metavar="action")
    export_p = audit_cmds.add_parser(
        "export", help="every event of a practice as chained JSON lines, to standard output"
    )
    export_p.add_argument("--practice", required=True, type=uuid_arg)
    export_p.add_argument(
        "--until", type=instant_arg, help="ISO 8601 instant (UTC when no offset); default: all"
    )
    export_p.set_defaults(run=audit_export)
    verify_p = audit_cmds.add_parser(
        "verify", help="check an export's chain and replay it; exit 1 naming what is wrong"
    )
    verify_p.add_argument("file")
    verify_p.set_defaults(run=audit_verify)


def add_migrate_commands(commands: Commands) -> None:
    """`migrate`: the durable tables' pending migrations."""
    migrate_p = commands.add_parser(
        "migrate", help="apply the durable tables' pending migrations (also done at start-up)"
    )
    migrate_p.set_defaults(run=migrate)


#: each adds its commands to the parser's subcommands
COMMANDS = (
    add_serve_commands,
    add_practice_commands,
    add_user_commands,
    add_report_commands,
    add_workers_commands,
    add_projections_commands,
    add_replay_commands,
    add_audit_commands,
    add_migrate_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payledger", description=__doc__)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PAYLEDGER_DATA_DIR"),
        help="where the embedded SQLite store lives (default ./var)",
    )
    commands = parser.add_subparsers(required=True, metavar="command")
    for add in COMMANDS:
        add(commands)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
