"""An ``AigwError`` raised in a notebook cell shows as its one line, not a traceback.

The README promises one actionable line per failure; in a notebook IPython would print twelve lines of
library frames above it. ``show_errors_as_one_line`` registers a custom exception handler for
``AigwError`` only: the cell's error output is the line (what went wrong and how to fix it), the full
traceback stays one ``%tb`` away, and every other exception keeps IPython's usual traceback.

The cell still fails: IPython marks the execution as an error, so papermill and nbval stop there as
before, with the same ``ename`` and ``evalue``.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from aigw.errors import AigwError

__all__ = ["one_line_traceback", "show_errors_as_one_line"]

_TB_HINT = "(the full traceback: run %tb in a new cell)"


def one_line_traceback(error: BaseException) -> list[str]:
    """The structured traceback IPython shows for an ``AigwError``: its class and its one line, then the hint."""
    return [f"{type(error).__name__}: {error}", _TB_HINT]


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    # %tb reads sys.last_*; IPython sets them only on its own traceback path, which a custom handler bypasses.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    stb = one_line_traceback(value)
    # _showtraceback sends the kernel's "error" output (the saved notebook and its HTML show this line) and
    # records it as the execute reply's traceback.
    shell._showtraceback(etype, value, stb)
    return stb


def show_errors_as_one_line() -> bool:
    """Register the handler in the running IPython shell; False (and nothing done) outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the kernel
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((AigwError,), _handler)
    return True
