"""cdc.progress: rate and ETA with an injected clock, the plain-line format, the modes."""

from __future__ import annotations

import io

import pytest

from cdc.progress import Progress, format_amount, format_duration


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        self.t += seconds


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def plain(clock: Clock, **kw: object) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress("shop: snapshot", enabled=True, stream=out, clock=clock, **kw), out  # type: ignore[arg-type]


def test_rate_and_eta() -> None:
    clock = Clock()
    p, _ = plain(clock)
    task = p.start_task("shop.orders", 10_000)
    for _ in range(10):
        clock.tick(1)
        p.advance(task, 100)
    s = p.stats(task)
    assert s.done == 1000
    assert s.rate == pytest.approx(100.0)
    assert s.eta_s == pytest.approx(90.0)
    assert s.fraction == pytest.approx(0.1)
    assert s.elapsed_s == pytest.approx(10.0)


def test_rate_follows_the_window_not_the_average() -> None:
    clock = Clock()
    p, _ = plain(clock, window=30.0)
    task = p.start_task("t", 100_000)
    for _ in range(60):  # 60 s at 10/s
        clock.tick(1)
        p.advance(task, 10)
    for _ in range(60):  # then 60 s at 1000/s
        clock.tick(1)
        p.advance(task, 1000)
    s = p.stats(task)
    assert s.rate == pytest.approx(1000.0)
    assert s.eta_s == pytest.approx((100_000 - 60_600) / 1000.0)


def test_unknown_total_or_rate_has_no_eta() -> None:
    clock = Clock()
    p, _ = plain(clock)
    unknown = p.start_task("a", None)
    assert p.stats(unknown).rate is None
    clock.tick(2)
    p.advance(unknown, 50)
    s = p.stats(unknown)
    assert s.rate == pytest.approx(25.0)
    assert s.eta_s is None
    assert s.fraction is None


def test_estimate_exceeded_and_finish() -> None:
    clock = Clock()
    p, _ = plain(clock)
    task = p.start_task("t", 100)
    clock.tick(4)
    p.advance(task, 150)  # server estimates are approximate
    s = p.stats(task)
    assert s.eta_s is None
    assert s.fraction == 1.0
    clock.tick(1)
    p.finish(task)
    clock.tick(100)  # time after finishing does not dilute its rate
    s = p.stats(task)
    assert s.eta_s == 0
    assert s.rate == pytest.approx(150 / 5)
    assert s.elapsed_s == pytest.approx(5.0)


def test_overall_sums_tasks() -> None:
    clock = Clock()
    p, _ = plain(clock)
    a = p.start_task("db.a", 1000)
    b = p.start_task("db.b", 3000)
    clock.tick(10)
    p.advance(a, 500)
    p.advance(b, 500)
    s = p.stats()
    assert (s.done, s.total) == (1000, 4000)
    assert s.rate == pytest.approx(100.0)
    assert s.eta_s == pytest.approx(30.0)
    p.start_task("db.c", None)
    assert p.stats().total is None


def test_plain_lines_about_every_interval() -> None:
    clock = Clock()
    p, out = plain(clock, interval=10.0)
    task = p.start_task("shop.orders", 100_000)
    for _ in range(25):  # 25 s at 1,234 rows/s
        clock.tick(1)
        p.advance(task, 1234)
    lines = out.getvalue().splitlines()
    assert lines == [
        "shop: snapshot: 12,340/100,000 rows (12.3%), 1,234 rows/s, ETA 1m11s [shop.orders 12,340/100,000]",
        "shop: snapshot: 24,680/100,000 rows (24.7%), 1,234 rows/s, ETA 1m01s [shop.orders 24,680/100,000]",
    ]
    clock.tick(1)
    p.finish(task)
    p.close()
    p.close()
    tail = out.getvalue().splitlines()[2:]
    assert tail == [
        "shop: snapshot: shop.orders done, 30,850 rows in 26s, 1,187 rows/s",
        "shop: snapshot: 30,850 rows in 26s, 1,187 rows/s",
    ]


def test_plain_line_lists_at_most_three_active_tasks() -> None:
    clock = Clock()
    p, _ = plain(clock)
    tasks = [p.start_task(f"db.t{i}", None) for i in range(5)]
    clock.tick(1)
    for t in tasks:
        p.advance(t, 10)
    p.finish(tasks[0])
    assert p.line() == "shop: snapshot: 50 rows, 50 rows/s [db.t1 10, db.t2 10, db.t3 10 +1 more]"


def test_bytes_unit() -> None:
    clock = Clock()
    out = io.StringIO()
    p = Progress("backup", unit="bytes", enabled=True, stream=out, clock=clock, interval=5)
    task = p.start_task("shop.orders", 100 * 1024 * 1024)
    for _ in range(5):
        clock.tick(1)
        p.advance(task, 2 * 1024 * 1024)
    assert out.getvalue().splitlines() == [
        "backup: 10.0 MiB/100.0 MiB (10.0%), 2.0 MiB/s, ETA 45s [shop.orders 10.0 MiB/100.0 MiB]"
    ]


def test_auto_is_silent_without_a_terminal() -> None:
    out = io.StringIO()
    clock = Clock()
    with Progress("x", stream=out, clock=clock, interval=0) as p:
        assert p.mode == "off"
        task = p.start_task("t", 10)
        clock.tick(1)
        p.advance(task, 5)
        p.finish(task)
    assert out.getvalue() == ""


def test_disabled_is_silent_even_on_a_terminal() -> None:
    out = Tty()
    with Progress("x", enabled=False, stream=out) as p:
        p.advance(p.start_task("t", 10), 5)
    assert out.getvalue() == ""


def test_terminal_gets_the_rich_display() -> None:
    out = Tty()
    clock = Clock()
    with Progress("snap", stream=out, clock=clock) as p:
        assert p.mode == "rich"
        a = p.start_task("db.a", 100)
        b = p.start_task("db.b", None)
        clock.tick(1)
        p.advance(a, 100)
        p.advance(b, 7)
        p.finish(a)
        p.finish(b)
    text = out.getvalue()
    assert "snap: db.a" in text
    assert "snap: total" in text
    assert "100/100 rows" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3599, "59m59s"), (3720, "1h02m"), (90000, "1d01h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_amount() -> None:
    assert format_amount(1234567, "rows") == "1,234,567"
    assert format_amount(512, "bytes") == "512 B"
    assert format_amount(1536, "bytes") == "1.5 KiB"
    assert format_amount(3 * 1024**3, "bytes") == "3.0 GiB"
