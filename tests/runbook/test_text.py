"""``aigw.text``: one line of text, UTC stamps for names."""

from __future__ import annotations

import datetime as dt

from aigw.text import one_line, utc_stamp


def test_one_line_folds_every_run_of_white_space() -> None:
    assert one_line("  a\n\tb  \r\n c ") == "a b c"


def test_one_line_cuts_within_the_limit_and_shows_the_cut() -> None:
    assert one_line("x" * 200, 10) == "xxxxxxx..."
    assert len(one_line("word " * 100, 160)) == 160
    assert one_line("short", 10) == "short"
    assert one_line("0123456789", 10) == "0123456789"


def test_utc_stamp_is_the_moment_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert utc_stamp(dt.datetime(2026, 12, 3, 9, 4, 5, tzinfo=paris)) == "20261203T080405Z"


def test_utc_stamp_without_a_moment_is_now() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = dt.datetime.strptime(utc_stamp(), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    after = dt.datetime.now(dt.UTC)
    assert before <= stamp <= after

