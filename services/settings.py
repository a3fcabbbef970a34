"""Configuration from the environment (see README: Configuration)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path

from adapters.messaging.email import SmtpSettings


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _list(value: str | None) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b'); unset or empty: ()."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


PROCESSORS = ("sandbox", "stripe", "clearent")


@dataclass(frozen=True)
class RateLimits:
    """How many requests each budget takes in one window (services/http/rate_limits.py;
    docs/reliability.md, "Rate limits"). A budget of 0 is no limit."""

    #: the length of a counting window, in seconds
    window_seconds: int = 1
    #: per caller (an API token, or a dashboard session's user)
    caller_reads: int = 50
    caller_writes: int = 50
    #: per practice, all its callers together
    practice_reads: int = 100
    practice_writes: int = 100
    #: the pay page, per pay link and per client address
    pay_link: int = 10
    pay_address: int = 30
    #: how often each process adds its counts to the shared ones (PostgreSQL), in seconds
    sync_seconds: float = 0.05

    @classmethod
    def from_env(cls, env: dict[str, str]) -> RateLimits:
        """PAYLEDGER_RATE_LIMIT_<FIELD> for each field (e.g. PAYLEDGER_RATE_LIMIT_CALLER_READS)."""
        values: dict[str, object] = {}
        for each in fields(cls):
            raw = env.get(f"PAYLEDGER_RATE_LIMIT_{each.name.upper()}", "").strip()
            if raw:
                values[each.name] = float(raw) if each.name == "sync_seconds" else int(raw)
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.window_seconds < 1 or self.sync_seconds <= 0:
            raise ValueError(
                "PAYLEDGER_RATE_LIMIT_WINDOW_SECONDS must be 1 or more and "
                "PAYLEDGER_RATE_LIMIT_SYNC_SECONDS more than 0"
            )
        budgets = (self.caller_reads, self.caller_writes, self.practice_reads)
        if min(*budgets, self.practice_writes, self.pay_link, self.pay_address) < 0:
            raise ValueError("a PAYLEDGER_RATE_LIMIT_... budget is 0 (no limit) or more")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str | None = None
    sandbox: bool = True
    operator_token: str | None = None
    #: the bearer token of GET /metrics; unset = /metrics is off
    metrics_token: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    smtp: SmtpSettings | None = None
    sms_url: str | None = None
    sms_token: str | None = None
    secret_key: str | None = None
    kafka_bootstrap: str | None = None
    scheduler_interval: float = 2.0
    #: catch the views up after each save (the API: read your writes); the relay and the
    #: writeback workers leave that to the API processes
    maintain_views: bool = True
    #: run the views' runners in this process (a thread beside the API, or inline); off
    #: (PAYLEDGER_RUN_VIEWS=0), `payledger projections run` processes run them and this
    #: one waits for their positions in the database
    run_views: bool = True
    run_scheduler: bool = True
    #: the card processor: "sandbox" (test cards, nothing charged) or "stripe"
    processor: str = "sandbox"
    #: the Stripe platform's secret key and webhook signing secret: never logged nor shown
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    #: where Stripe's API is (tests point it at a fake); None = Stripe's own
    stripe_api_base: str | None = None
    #: the platform's publishable key (pk_...), for Stripe.js and its Payment Element
    stripe_publishable_key: str | None = None
    #: Clearent's gateway (each practice's API key is set by the operator, kept sealed):
    #: its sandbox host unless set (PAYLEDGER_CLEARENT_URL=https://gateway.clearent.net
    #: in production); card numbers are taken only with the sandbox host
    clearent_url: str = "https://gateway-sb.clearent.net"
    #: the HTTP API's and the dashboard's rate limits
    rate_limits: RateLimits = field(default_factory=RateLimits)
    #: the proxies (addresses or networks) whose X-Forwarded-For names the client; none by
    #: default, so a client's own header never changes the address its attempts count on
    trusted_proxies: tuple[str, ...] = ()
    #: hosts (name or name:port) a PMS connection may reach even at a private or loopback
    #: address; none by default (adapters/pms/addresses.py)
    pms_allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.processor not in PROCESSORS:
            raise ValueError(
                f"PAYLEDGER_PROCESSOR must be one of {', '.join(PROCESSORS)}, not "
                f"{self.processor!r}"
            )
        if self.processor == "stripe" and not self.stripe_secret_key:
            raise ValueError("PAYLEDGER_PROCESSOR=stripe needs PAYLEDGER_STRIPE_SECRET_KEY")
        if not self.clearent_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(
                "PAYLEDGER_CLEARENT_URL must be an https:// address, such as "
                "https://gateway.clearent.net (production) or https://gateway-sb.clearent.net"
            )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    "PAYLEDGER_TRUSTED_PROXIES is a comma-separated list of the proxies' "
                    f"addresses or networks (10.0.0.5, 10.0.0.0/24), not {proxy!r}"
                ) from None

    @property
    def sqlite_path(self) -> str:
        return str(self.data_dir / "payledger.sqlite3")

    def secret(self) -> bytes:
        """The key that signs pay links: PAYLEDGER_SECRET_KEY, or one kept in the data dir."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ) if env is None else env
        smtp_host = env.get("PAYLEDGER_SMTP_HOST")
        smtp = (
            SmtpSettings(
                host=smtp_host,
                port=int(env.get("PAYLEDGER_SMTP_PORT", "25")),
                sender=env.get("PAYLEDGER_SMTP_SENDER", "payments@payledger.local"),
                username=env.get("PAYLEDGER_SMTP_USERNAME") or None,
                password=env.get("PAYLEDGER_SMTP_PASSWORD") or None,
                starttls=_flag(env.get("PAYLEDGER_SMTP_STARTTLS"), False),
            )
            if smtp_host
            else None
        )
        values: dict[str, object] = {
            "data_dir": Path(env.get("PAYLEDGER_DATA_DIR", "var")),
            "database_url": env.get("PAYLEDGER_DATABASE_URL") or None,
            "sandbox": _flag(env.get("PAYLEDGER_SANDBOX"), True),
            "operator_token": env.get("PAYLEDGER_OPERATOR_TOKEN") or None,
            "metrics_token": env.get("PAYLEDGER_METRICS_TOKEN") or None,
            "base_url": env.get("PAYLEDGER_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            "smtp": smtp,
            "sms_url": env.get("PAYLEDGER_SMS_URL") or None,
            "sms_token": env.get("PAYLEDGER_SMS_TOKEN") or None,
            "secret_key": env.get("PAYLEDGER_SECRET_KEY") or None,
            "kafka_bootstrap": env.get("PAYLEDGER_KAFKA_BOOTSTRAP") or None,
            "run_views": _flag(env.get("PAYLEDGER_RUN_VIEWS"), True),
            "processor": (env.get("PAYLEDGER_PROCESSOR") or "sandbox").strip().lower(),
            "stripe_secret_key": env.get("PAYLEDGER_STRIPE_SECRET_KEY") or None,
            "stripe_webhook_secret": env.get("PAYLEDGER_STRIPE_WEBHOOK_SECRET") or None,
            "stripe_api_base": env.get("PAYLEDGER_STRIPE_API_BASE") or None,
            "stripe_publishable_key": env.get("PAYLEDGER_STRIPE_PUBLISHABLE_KEY") or None,
            "clearent_url": (
                env.get("PAYLEDGER_CLEARENT_URL") or "https://gateway-sb.clearent.net"
            ).strip(),
            "rate_limits": RateLimits.from_env(env),
            "trusted_proxies": _list(env.get("PAYLEDGER_TRUSTED_PROXIES")),
            "pms_allowed_hosts": _list(env.get("PAYLEDGER_PMS_ALLOWED_HOSTS")),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
