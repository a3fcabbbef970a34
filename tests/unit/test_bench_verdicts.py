"""The pure parts of `make bench`'s report: wrk's output read, verdicts and their lines, the
summary table, and transactions per payment from the two windows' counts."""

from __future__ import annotations

import pytest

from bench.http import parse_wrk, wrk_ms
from bench.verdicts import Check, Target, XactCount, line, summary, verdict, xact_per_payment

WRK = """Running 10s test @ http://127.0.0.1:41234/v1/payments
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   110.51ms   45.02ms 412.33ms   71.20%
    Req/Sec    36.52     12.01    70.00     65.00%
  Latency Distribution
     50%  104.20ms
     75%  131.07ms
     90%  168.94ms
     99%    1.02s
  731 requests in 10.01s, 310.17KB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:     73.03
Transfer/sec:     30.99KB
"""


def test_wrk_output_is_read() -> None:
    assert parse_wrk(WRK) == {
        "rps": 73.03,
        "p50_ms": 104.2,
        "p99_ms": 1020.0,
        "requests": 731.0,
        "non_2xx": 2.0,
        "socket_errors": 3.0,
    }


def test_wrk_without_errors_has_none() -> None:
    text = WRK.replace("  Socket errors: connect 0, read 0, write 0, timeout 3\n", "").replace(
        "  Non-2xx or 3xx responses: 2\n", ""
    )
    figures = parse_wrk(text)
    assert figures["non_2xx"] == 0.0
    assert figures["socket_errors"] == 0.0


def test_wrk_output_without_latency_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk("Requests/sec: 10.00\n")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("812.00us", 0.812), ("3.41ms", 3.41), ("1.02s", 1020.0), ("1.50m", 90_000.0)],
)
def test_wrk_durations_in_ms(text: str, ms: float) -> None:
    assert wrk_ms(text) == pytest.approx(ms)


def test_a_wrk_duration_it_cannot_read() -> None:
    with pytest.raises(ValueError):
        wrk_ms("3.41 ms")


def test_verdicts() -> None:
    at_least = Target(">=", 0.3, on="ratio")
    below = Target("<", 50, "ms")
    at_most = Target("<=", 1.5)
    assert verdict(0.3, at_least) == "met"
    assert verdict(0.06, at_least) == "missed by 5.00x"
    assert verdict(0.0, at_least) == "missed (the figure is 0)"
    assert verdict(49.9, below) == "met"
    assert verdict(50.0, below) == "missed by 1.00x"
    assert verdict(275.0, below) == "missed by 5.50x"
    assert verdict(1.5, at_most) == "met"
    assert verdict(13.2, at_most) == "missed by 8.80x"
    assert verdict(None, at_most) == "not measured"


def test_targets_described() -> None:
    assert Target(">=", 0.3, on="ratio").describe() == ">= 0.3x"
    assert Target("<", 50, "ms").describe() == "< 50 ms"
    assert Target(">=", 20_000, "events/s").describe() == ">= 20,000 events/s"
    assert Target("<=", 1.5).describe() == "<= 1.5"
    assert Target(">=", 500, "/s").describe() == ">= 500/s"


def test_a_ratio_target_is_checked_on_the_ratio() -> None:
    check = Check("POST", 73.0, "/s", Target(">=", 0.3, on="ratio"), 1460.0, "trivial POST")
    assert check.ratio == pytest.approx(0.05)
    assert check.verdict == "missed by 6.00x"
    assert line(check) == (
        "  POST: 73.0/s\n"
        "      baseline: trivial POST 1,460/s | ratio 0.05x | target >= 0.3x | missed by 6.00x"
    )


def test_a_value_target_is_checked_on_the_figure() -> None:
    check = Check("bulk", 2.5, "s", Target("<", 3, "s"), 0.1, "raw:", "4,313 sent")
    assert check.ratio == pytest.approx(25.0)
    assert check.verdict == "met"
    assert line(check) == (
        "  bulk: 2.50 s (4,313 sent)\n"
        "      baseline: raw: 0.10 s | ratio 25.00x | target < 3 s | met"
    )


def test_a_figure_not_measured_says_why() -> None:
    why = "not measured (bench.scale.replay_figures missing)"
    check = Check("replay", None, "events/s", Target(">=", 20_000), baseline_label=why)
    assert check.ratio is None
    assert line(check) == (
        f"  replay: -\n      baseline: {why} | ratio - | target >= 20,000 | not measured"
    )


def test_summary_table() -> None:
    table = summary(
        [
            Check("structure", 1.2, "", Target("<=", 1.5), 1.0, "raw"),
            Check("POST", 73.0, "/s", Target(">=", 0.3, on="ratio"), 1460.0, "trivial"),
            Check("replay", None, "events/s", Target(">=", 20_000, "events/s")),
        ]
    )
    rows = table.splitlines()
    assert rows[0].split() == ["target", "figure", "ratio", "bound", "verdict"]
    assert rows[2].split() == ["structure", "1.20", "1.20x", "<=", "1.5", "met"]
    assert rows[3].split() == ["POST", "73.0/s", "0.05x", ">=", "0.3x", "missed", "by", "6.00x"]
    assert rows[4].split() == ["replay", "-", "-", ">=", "20,000", "events/s", "not", "measured"]
    assert rows[-1].strip() == "1 met, 1 missed, 1 not measured, of 3"


def test_transactions_per_payment_subtract_the_idle_window() -> None:
    idle = XactCount(commits_before=1000, commits_after=1150, payments_before=5, payments_after=5)
    load = XactCount(
        commits_before=1200, commits_after=2650, payments_before=10, payments_after=110
    )
    assert load.commits == 1450
    assert load.payments == 100
    assert xact_per_payment(load, idle) == pytest.approx(13.0)


def test_transactions_per_payment_of_one_each() -> None:
    idle = XactCount(0, 40, 0, 0)
    load = XactCount(0, 540, 0, 500)
    assert xact_per_payment(load, idle) == pytest.approx(1.0)


def test_no_payment_no_figure() -> None:
    assert xact_per_payment(XactCount(0, 100, 7, 7), XactCount(0, 90, 0, 0)) is None
