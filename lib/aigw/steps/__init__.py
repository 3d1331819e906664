"""One module per notebook: the logic its cells call, one function per cell.

Each step takes the ``Session`` first and returns a small result object that shows itself in the
notebook (``_repr_markdown_``) and carries its ``checks`` (``aigw.evidence.Check``) for
``evidence.record_all``. Submodules are imported by the notebook that needs them
(``from aigw.steps import create_gateway``); this package imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from aigw.evidence.marks import status_mark

if TYPE_CHECKING:
    from aigw.evidence import Check

__all__ = ["DOLLAR", "cell_text", "checks_list", "checks_table", "markdown_table", "md_text", "status_mark", "usd"]


def usd(amount: float, digits: int = 4) -> str:
    """An amount of money as ``USD 0.0043``: a ``$`` in Markdown opens TeX for MathJax (JupyterLab) and
    nbconvert's math plugin, which garbles the amount and the text up to the next ``$``."""
    return f"USD {amount:.{digits}f}"


#: ``$`` as Markdown that shows a dollar sign and never starts TeX: JupyterLab's MathJax reads ``\$`` as a
#: delimiter too (the Markdown renderer unescapes it first), but it never pairs delimiters across elements,
#: and nbconvert's math plugin sees no ``$`` in an entity (checked in a browser: tests/browser).
DOLLAR: Final = "<span>&#36;</span>"


def md_text(text: str) -> str:
    """Plain text safe in Markdown prose: each ``$`` becomes ``DOLLAR``, so that it never starts TeX math."""
    return text.replace("$", DOLLAR)


def cell_text(value: Any) -> str:
    """A value as a Markdown table cell: code-formatted, pipes escaped, None as a dash."""
    if value is None:
        return "—"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else "`\"\"`"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """A Markdown table; cells go through ``cell_text`` unless ``raw`` (already Markdown)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [str(c) if raw else cell_text(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks_table(checks: Iterable[Check]) -> str:
    """Checks as a Markdown table: status, check, detail."""
    return markdown_table(["", "check", "detail"], [(status_mark(c.status), c.check, c.detail) for c in checks])


def checks_list(checks: Iterable[Check]) -> str:
    """Checks as a Markdown bullet list, one line each."""
    return "\n".join(f"* {status_mark(c.status)} {md_text(c.check)}: {md_text(c.detail)}" for c in checks)
