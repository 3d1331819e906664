"""Imports the runbook's processes pay for and never use, kept out of the run's critical path.

Libraries import optional modules eagerly when they are installed, and this venv has them installed for other
reasons (boto3 and pyarrow for notebook 07, trio for the browser tests' selenium). Measured with
``python -X importtime`` (docs/PERFORMANCE.md, rounds 1 and 4):

* jsonschema imports ``rfc3987_syntax``, which builds a grammar for about 2 s, in every process that imports
  nbformat; it serves only the ``iri`` formats, which no nbformat schema uses (``skip_unused_import_tax``).
* papermill's ``iorw`` imports boto3 (s3://), ``pyarrow.fs`` (hdfs://), gcsfs, PyGithub and Azure's clients:
  0.33 s of the runner's start. The runner reads and writes local notebooks only (``PAPERMILL_REMOTE_IO``).
* httpcore imports trio (0.2 s) for async code under trio, and httpx its command line (``httpx._main``: click
  and rich, 0.1 s) for ``httpx`` the command. The runbook's clients are synchronous (``HTTP_EXTRAS``).

Each library treats the module as absent (it catches the ``ImportError``), which is what it is to the runbook.
``without`` blocks the names only while its block imports; afterwards they import as usual (a None entry in
``sys.modules`` makes an import raise ``ImportError``: Python's documented opt-out).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Final

__all__ = ["HTTP_EXTRAS", "PAPERMILL_REMOTE_IO", "skip_unused_import_tax", "without"]

PAPERMILL_REMOTE_IO: Final = ("boto3", "pyarrow.fs", "gcsfs", "github", "azure.storage.blob",
                              "azure.datalake.store", "azure.identity")
HTTP_EXTRAS: Final = ("trio", "httpx._main")


@contextlib.contextmanager
def without(names: Sequence[str]) -> Iterator[None]:
    """Inside the block, importing any of ``names`` that is not imported yet raises ``ImportError``."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def skip_unused_import_tax() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` for the rest of the process (see above). Too late once
    jsonschema is imported (then it changes nothing)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
