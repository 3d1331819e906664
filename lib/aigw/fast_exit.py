"""A runbook process whose work is done leaves without a garbage collection of its whole heap.

At exit, CPython collects every generation before it tears the modules down, and that walks every object the
process's imports made: papermill, nbformat, jupyter_client and the twin in the runner; ipykernel, pandas and
matplotlib in the kernels' fork server; nbconvert in the export worker. Measured on ``aigw run`` (2 cores): the
runner's exit took 0.34 s after its last line, 0.15 s with the heap frozen; the fork server took 0.36 s to stop,
0.11 s frozen (docs/PERFORMANCE.md, round 5).

``gc.freeze()`` moves every object to the permanent generation, so that collection has nothing to walk. Exit
handlers still run and files are still closed by their owners (each process here flushes what it writes); what is
skipped is running the finalizers of objects held in reference cycles, which CPython does not promise at exit.
"""

from __future__ import annotations

import gc

__all__ = ["leaving"]


def leaving(code: int) -> int:
    """``code``, once the heap is frozen: call it as the process's last step, ``sys.exit(leaving(main()))``."""
    gc.freeze()
    return code
