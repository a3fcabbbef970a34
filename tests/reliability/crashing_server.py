"""`payledger serve` with crash points: `python -m tests.reliability.crashing_server serve ...`.

The server is the real one. When the file named by PAYLEDGER_CRASH_FILE holds the
name of a phase, the process dies (os._exit, as abruptly as kill -9: no cleanup, no
answer) the next time a command reaches that phase, and the file is emptied so that
the restarted server runs normally. Phases, in the order a command goes through them:

  claimed   the Idempotency-Key is claimed, the command has not run
  charged   the processor charged the card, nothing is recorded
  voided    the processor voided the charge, nothing is recorded
  saved     the command's first events are saved (for a refund: its intent), no answer
  refunded  the processor refunded, the refund's outcome is not recorded
  answered  the answer is made, not yet kept for replays
  kept      the answer is kept, not yet sent
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adapters.processor.sandbox import SandboxProcessor
from services.cli import main
from services.context import Components
from services.http.idempotency import IdempotencyMiddleware

CRASH_FILE = Path(os.environ.get("PAYLEDGER_CRASH_FILE", "/nonexistent"))


def crash_if(phase: str) -> None:
    try:
        armed = CRASH_FILE.read_text().strip()
    except OSError:
        return
    if armed == phase:
        CRASH_FILE.write_text("")
        os._exit(137)


def after(cls: Any, name: str, phase: str) -> None:
    original = getattr(cls, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        crash_if(phase)
        return result

    setattr(cls, name, wrapped)


def before(cls: Any, name: str, phase: str) -> None:
    original = getattr(cls, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        crash_if(phase)
        return original(*args, **kwargs)

    setattr(cls, name, wrapped)


after(IdempotencyMiddleware, "claim", "claimed")
after(SandboxProcessor, "charge", "charged")
after(SandboxProcessor, "void", "voided")
after(SandboxProcessor, "refund", "refunded")
after(Components, "save", "saved")
before(IdempotencyMiddleware, "finish", "answered")
after(IdempotencyMiddleware, "finish", "kept")

if __name__ == "__main__":
    raise SystemExit(main())
