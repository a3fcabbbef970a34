"""The pure part of `make bench`'s report: targets, verdicts, the lines and the summary table,
and the arithmetic of PostgreSQL transactions per payment (bench/http.py measures it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Op = Literal[">=", "<=", "<"]


@dataclass(frozen=True)
class Target:
    """A bound on a figure: `figure op bound` (on the figure itself, or on its ratio to the
    baseline with `on="ratio"`)."""

    op: Op
    bound: float
    unit: str = ""
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.bound
        if self.op == "<=":
            return value <= self.bound
        return value < self.bound

    def describe(self) -> str:
        unit = "x" if self.on == "ratio" else self.unit
        return f"{self.op} {self.bound:,g}{space(unit)}"


@dataclass(frozen=True)
class Check:
    """One figure of the targets, beside its baseline measured in the same run."""

    label: str
    value: float | None
    unit: str
    target: Target
    baseline: float | None = None
    baseline_label: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def checked(self) -> float | None:
        """The number the target is about: the figure, or its ratio to the baseline."""
        return self.ratio if self.target.on == "ratio" else self.value

    @property
    def verdict(self) -> str:
        return verdict(self.checked, self.target)


def verdict(value: float | None, target: Target) -> str:
    """The verdict: met, "missed by X" (X the factor between the figure and the bound),
    or "not measured"."""
    if value is None:
        return "not measured"
    if target.met(value):
        return "met"
    if target.op == ">=":
        factor = target.bound / value if value > 0 else float("inf")
    else:
        factor = value / target.bound if target.bound > 0 else float("inf")
    if factor == float("inf"):
        return "missed (the figure is 0)" if target.op == ">=" else "missed"
    return f"missed by {factor:.2f}x"


def space(unit: str) -> str:
    """A unit as printed after a number: "x" and "/s" stuck to it, words after a space."""
    if not unit:
        return ""
    return unit if unit in ("x", "/s") else f" {unit}"


def number(value: float) -> str:
    """A figure to read: thousands separated, decimals only where they say something."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def shown(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{number(value)}{space(unit)}"


def line(check: Check) -> str:
    """One figure: the figure, its baseline of the same run, the ratio, target and verdict."""
    baseline = (
        f"{check.baseline_label} {shown(check.baseline, check.unit)}"
        if check.baseline is not None
        else (check.baseline_label or "no baseline")
    )
    ratio = "-" if check.ratio is None else f"{check.ratio:.2f}x"
    note = f" ({check.note})" if check.note else ""
    return (
        f"  {check.label}: {shown(check.value, check.unit)}{note}\n"
        f"      baseline: {baseline} | ratio {ratio} | target {check.target.describe()}"
        f" | {check.verdict}"
    )


def summary(checks: list[Check]) -> str:
    """The table of verdicts, one row a target."""
    rows = [
        (
            c.label,
            shown(c.value, c.unit),
            "-" if c.ratio is None else f"{c.ratio:.2f}x",
            c.target.describe(),
            c.verdict,
        )
        for c in checks
    ]
    head = ("target", "figure", "ratio", "bound", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def row(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    met = sum(1 for c in checks if c.verdict == "met")
    unmeasured = sum(1 for c in checks if c.verdict == "not measured")
    missed = len(checks) - met - unmeasured
    return "\n".join(
        [
            row(head),
            row(tuple("-" * w for w in widths)),
            *(row(r) for r in rows),
            f"\n  {met} met, {missed} missed, {unmeasured} not measured, of {len(checks)}",
        ]
    )


@dataclass(frozen=True)
class XactCount:
    """One window of the transactions count: pg_stat_database's `xact_commit` for the bench
    database and the payments recorded in it, at its start and at its end."""

    commits_before: int
    commits_after: int
    payments_before: int
    payments_after: int

    @property
    def commits(self) -> int:
        return self.commits_after - self.commits_before

    @property
    def payments(self) -> int:
        return self.payments_after - self.payments_before


def xact_per_payment(load: XactCount, idle: XactCount) -> float | None:
    """Transactions per payment: the load window's commits less those of the idle window
    (the same server, the same length, no request: its background work, the pending
    statistics at the start and its shutdown), over the payments recorded in the load
    window. None when no payment was recorded."""
    if load.payments <= 0:
        return None
    return (load.commits - idle.commits) / load.payments


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())
