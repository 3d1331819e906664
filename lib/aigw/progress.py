"""What ``aigw run`` shows while it runs: one progress bar per notebook and a line when it finishes.

The bar (tqdm, on stderr) counts the notebook's code cells and is drawn only on a terminal; the line per
finished notebook is always printed. ``-v`` adds a line per cell (its first line of code) and the
parameters each notebook got.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["RunProgress", "line", "progress"]


def line(message: str) -> None:
    """One line of ``aigw run``'s progress, on stderr (stdout keeps the run folder and the criteria)."""
    print(f"aigw: {message}", file=sys.stderr, flush=True)


@dataclass
class RunProgress:
    verbose: bool = False
    _bar: Any = None

    def start(self, name: str, cells: int, detail: str = "") -> None:
        from tqdm import tqdm

        if self.verbose:
            line(f"{name}: running{f' ({detail})' if detail else ''}")
        # disable=None: drawn on a terminal only, so a log or CI output holds the lines and no bar frames.
        self._bar = tqdm(total=cells, desc=name, unit="cell", file=sys.stderr, leave=False, disable=None,
                         dynamic_ncols=True)

    def cell(self, name: str, index: int | None, first_line: str) -> None:
        if self._bar is not None:
            self._bar.update(1)
        if self.verbose:
            message = f"  {name} cell {index}: {first_line[:80]}"
            if self._bar is not None and not self._bar.disable:
                self._bar.write(f"aigw: {message}", file=sys.stderr)
            else:
                line(message)

    def finish(self, message: str) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        line(message)


#: The run's progress (one run per process); ``aigw run -v`` sets ``verbose``.
progress = RunProgress()
