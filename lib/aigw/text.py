"""Small text helpers the library shares: a value on one line, a UTC time stamp for names.

::

    one_line("a\\n  b", 160)     # 'a b'
    one_line("x" * 200, 10)     # 'xxxxxxx...'
    utc_stamp()                 # '20261203T080330Z': sorts as time does, safe in a file name
"""

from __future__ import annotations

import datetime as dt

__all__ = ["one_line", "utc_stamp"]

def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of white space (newlines too) folded to one space, cut to ``limit`` characters.

    A cut text ends in ``...`` within the limit, so the reader sees that something was left out.
    """
    folded = " ".join(text.split())
    if limit is None or len(folded) <= limit:
        return folded
    return folded[: limit - 3] + "..."


def utc_stamp(now: dt.datetime | None = None) -> str:
    """``now`` (default: this moment) in UTC as ``YYYYMMDDTHHMMSSZ``, for run ids and folder names."""
    moment = dt.datetime.now(dt.UTC) if now is None else now.astimezone(dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")

