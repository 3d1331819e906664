"""Cloudflare's paginated lists, read one way: ``page`` / ``per_page``, page 1, 2, ... until an empty page.

That is how the official SDKs read them (``result_info.total_count`` is not trusted to end a read: items
may arrive meanwhile). Every list operation and every check-before-retry that searches a list uses
``pages``; ``fetch_logs`` reads several pages at once, each with ``read_page``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from aigw.cloudflare.envelope import Envelope
from aigw.cloudflare.results import as_items

__all__ = ["LIST_PER_PAGE", "MAX_PAGES", "GetPage", "page_rows", "pages", "read_page"]

#: Cloudflare's page-size ceiling for lists (2024 schema; the twin enforces the same).
LIST_PER_PAGE: Final = 50
#: A bound on a read that never meets an empty page (a server that repeats its last page).
MAX_PAGES: Final = 10_000

#: A GET of ``path`` with these query items (the operation's deadline is bound in).
GetPage = Callable[[Sequence[tuple[str, str]]], Envelope]


def read_page(get: GetPage, params: Sequence[tuple[str, str]], page: int, per_page: int) -> Envelope:
    return get([*params, ("page", str(page)), ("per_page", str(per_page))])


def page_rows(env: Envelope, path: str) -> list[Any]:
    """A page's items as sent (a missing result is an empty page); anything but a list is an error."""
    if env.result is None:
        return []
    if not isinstance(env.result, list):
        as_items(env, "GET", "/" + path)  # raises: a list was expected
    return list(env.result)


def pages(
    get: GetPage, path: str, params: Sequence[tuple[str, str]] = (), *, per_page: int = LIST_PER_PAGE
) -> Iterator[list[Mapping[str, Any]]]:
    """The objects of each page of the list at ``path``, page after page, until an empty page."""
    for page in range(1, MAX_PAGES + 1):
        env = read_page(get, params, page, per_page)
        if not page_rows(env, path):
            return
        yield as_items(env, "GET", "/" + path)
