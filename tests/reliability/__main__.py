"""`python -m tests.reliability`: the long fault run behind `make chaos`."""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

from tests.reliability.harness import Plan, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("--trials", type=int, default=int(os.environ.get("CHAOS_TRIALS", 1000)))
    parser.add_argument(
        "--seed", type=int, default=int(os.environ.get("CHAOS_SEED") or random.randrange(10**6))
    )
    parser.add_argument("--clients", type=int, default=int(os.environ.get("CHAOS_CLIENTS", 3)))
    parser.add_argument(
        "--trial-seconds", type=float, default=float(os.environ.get("CHAOS_TRIAL_SECONDS", 2.0))
    )
    parser.add_argument(
        "--pause-seconds", type=float, default=float(os.environ.get("CHAOS_PAUSE_SECONDS", 10.0))
    )
    parser.add_argument("--log-dir", type=Path, help="keep the processes' log here")
    args = parser.parse_args()
    plan = Plan(
        trials=args.trials,
        seed=args.seed,
        clients=args.clients,
        trial_seconds=args.trial_seconds,
        pause_seconds=args.pause_seconds,
        log_dir=args.log_dir,
    )
    outcome = run(plan, progress=lambda line: print(line, flush=True))
    for failure in outcome.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(outcome.summary(), flush=True)
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
