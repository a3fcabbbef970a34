"""The workers' loop against a broker that may be down: a step run again and again until
stopped; after a failure the next try waits, twice as long after each failure in a row
(at most ``longest``), and a success starts the wait over."""

from __future__ import annotations

import threading
from collections.abc import Callable


def with_backoff(
    stop: threading.Event,
    step: Callable[[], None],
    *,
    failed: Callable[[Exception, float], None],
    first: float = 0.5,
    longest: float = 10.0,
) -> None:
    """Run ``step`` until ``stop`` is set; ``failed(error, delay)`` is told of each failure
    (to log it and let go of what failed) before the wait of ``delay`` seconds."""
    delay = first
    while not stop.is_set():
        try:
            step()
        except Exception as error:
            failed(error, delay)
            stop.wait(delay)
            delay = min(delay * 2, longest)
        else:
            delay = first
