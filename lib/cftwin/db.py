"""The twin's state store: one SQLite database (a file, or ``:memory:``), shared by every service.

Each service's ``models.py`` declares its tables (``SCHEMA``); ``cftwin.schema.SCHEMAS`` lists them all,
explicitly (no import registers anything), and a ``Database`` applies that list when it opens. A service
reaches the rows only through ``Database``. A restarted twin on the same file has lost nothing: every write is
committed before the HTTP answer is sent.

The file is private (mode 0600, set on every open, an existing file's too: SQLite gives its ``-wal`` /
``-shm`` files the same mode) and holds no credential (``cftwin.digests``). Its ``user_version`` is
``SCHEMA_VERSION``: a file of another twin version, a file that is not SQLite, a folder, or a path in a
missing folder is refused with one line (``TwinConfigError``) before anything is served.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from cftwin.errors import TwinConfigError

__all__ = ["SCHEMA_VERSION", "Database"]

#: Raised whenever a table changes shape (2: tokens and secret values kept as digests).
SCHEMA_VERSION: Final = 2
#: How many distinct reads ``query_one`` keeps between writes (then it starts again).
_MAX_KEPT_READS: Final = 1024
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
T = TypeVar("T")


def _statements(script: str) -> Iterator[str]:
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""


def _make_private_file(path: Path) -> None:
    """Create ``path`` (mode 0600) before SQLite does (it would use 0644), or make an existing one 0600;
    a missing folder or a folder is one line."""
    if not path.parent.is_dir():
        raise TwinConfigError(
            f"the twin's state {str(path)!r} is in a folder that does not exist",
            hint="Create the folder first, or give --state (--twin-state) a path in an existing one",
        )
    if path.is_dir():
        raise TwinConfigError(f"the twin's state {str(path)!r} is a folder",
                              hint="Give --state (--twin-state) a file name")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise TwinConfigError(f"cannot open the twin's state {str(path)!r}: {exc.strerror}",
                              hint="Check the path and its permissions") from None


class Database:
    """A thread-safe SQLite connection with the registered schemas applied.

    **Parameters:**
    * path - a file path, or ``":memory:"`` for state that lives as long as the process.
    """

    def __init__(self, path: str = ":memory:", schemas: Sequence[tuple[str, str]] | None = None) -> None:
        """**Parameters:** path - a file or ``":memory:"``; schemas - ``(name, DDL)`` pairs to apply (default:
        every service's, ``cftwin.schema.SCHEMAS``)."""
        if schemas is None:
            # Imported here: the services' modules import this one.
            from cftwin.schema import SCHEMAS

            schemas = SCHEMAS
        self.path = path
        if path != ":memory:" and not path.startswith("file:"):
            _make_private_file(Path(path))
        self._schemas = tuple(schemas)
        # The twin's HTTP server and its admin share one connection; the lock serialises them.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False
        #: Derived values a service keeps for this database (e.g. the logs' query cache), keyed by the
        #: service: state of the twin's, held here rather than in a module global.
        self.memo: dict[str, Any] = {}
        self._version = 0
        # Rows read since the last write, by (sql, params): a gateway request reads the same token, gateway,
        # provider config and secret as every other request of its burst, and nothing changed in between. Only
        # for ":memory:", which no other connection can write behind this one's back; any write empties it.
        self._reads: dict[tuple[str, tuple[Any, ...]], sqlite3.Row | None] | None = {} if path == ":memory:" else None
        #: Values made from a kept row (``query_one_as``), kept and forgotten with it.
        self._made: dict[tuple[str, tuple[Any, ...]], Any] = {}
        #: The words of each kept read's SQL: a write that names the tables it touches forgets only the
        #: reads that name one of them.
        self._words: dict[str, frozenset[str]] = {}
        try:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._check_version()
            with self._lock:
                for _, ddl in self._schemas:
                    for statement in _statements(ddl):
                        self._conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise TwinConfigError(
                f"the twin's state {path!r} is not a SQLite database ({exc})",
                hint="Give --state (--twin-state) a new file name, or delete this file",
            ) from None
        except TwinConfigError:
            self._conn.close()
            raise

    def _check_version(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        tables = self._conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        if tables == 0:
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise TwinConfigError(
                f"the twin's state {self.path!r} has schema version {version}, this twin needs {SCHEMA_VERSION}",
                hint="Give --state (--twin-state) a new file name, or delete this file (it was written by "
                "another twin version or another program)",
            )

    def transaction(self, touches: Collection[str] | None = None) -> AbstractContextManager[sqlite3.Connection]:
        """One atomic unit: all of it is stored, or none of it (nothing half-made).

        ``touches``: the only tables the unit writes (no trigger or cascade reaches further); the kept reads
        of other tables stay (the data plane's log insert leaves the token, gateway and secret reads of
        the next requests kept). By default every kept read is forgotten.
        """
        return _Unit(self, touches)

    def _forget_reads(self, tables: frozenset[str] | None = None) -> None:
        reads = self._reads
        if not reads:
            return
        if tables is None:
            reads.clear()
            self._made.clear()
            return
        # A read is forgotten when its SQL names a touched table (a word match: at worst it forgets more).
        for key in [k for k in reads if not tables.isdisjoint(self._words_of(k[0]))]:
            del reads[key]
            self._made.pop(key, None)

    def _words_of(self, sql: str) -> frozenset[str]:
        words = self._words.get(sql)
        if words is None:
            words = self._words[sql] = frozenset(w.lower() for w in _WORD.findall(sql))
        return words

    def next_version(self) -> int:
        """A version number unique in this database and larger than any an earlier process wrote to it
        (nanoseconds of the clock, at least one more than the last): a cache entry made for one state can
        never be taken for another."""
        with self._lock:
            self._version = max(self._version + 1, time.time_ns())
            return self._version

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            self._forget_reads()  # it may write: taken as a write, whatever the statement
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> None:
        with self.transaction() as conn:
            conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        """The first row of a read (a ``SELECT``: it must not write), or None."""
        with self._lock:
            reads = self._reads if self._depth == 0 and not isinstance(params, dict) else None
            if reads is None:
                row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
                return row
            key = (sql, tuple(params))
            try:
                return reads[key]
            except KeyError:
                pass
            except TypeError:  # a parameter that is not hashable: read it, do not keep it
                found: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
                return found
            if len(reads) >= _MAX_KEPT_READS:
                reads.clear()
                self._made.clear()
            row = reads[key] = self._conn.execute(sql, params).fetchone()
            return row

    def query_one_as(self, sql: str, params: Sequence[Any], make: Callable[[sqlite3.Row], T]) -> T | None:
        """``make(row)`` for the first row of a read, or None; while the row is kept (``query_one``), so is what
        ``make`` made of it, so ``make`` must return a value nobody changes (a frozen dataclass)."""
        with self._lock:
            row = self.query_one(sql, params)
            if row is None:
                return None
            key = (sql, tuple(params))
            try:
                kept = self._depth == 0 and self._reads is not None and key in self._reads
            except TypeError:  # a parameter that is not hashable: query_one did not keep the row either
                kept = False
            if not kept:
                return make(row)
            try:
                made: T = self._made[key]
            except KeyError:
                made = self._made[key] = make(row)
            return made

    def reset(self) -> None:
        """Delete every row of every table (the admin API's reset)."""
        with self.transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys=ON")
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                if not table.startswith("sqlite_"):
                    conn.execute(f'DELETE FROM "{table}"')

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


class _Unit:
    """``Database.transaction``'s context: a class, not a generator, as every gateway log batch opens one."""

    __slots__ = ("_db", "_name", "_nested", "_scope", "_touches")

    def __init__(self, db: Database, touches: Collection[str] | None) -> None:
        self._db = db
        self._touches = touches
        self._scope: frozenset[str] | None = None
        self._name = ""
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._lock.acquire()
        try:
            touches = self._touches
            self._scope = scope = None if touches is None or db._depth > 0 else frozenset(touches)
            db._forget_reads(scope)
            # Nested units (a handler composing two services' writes) become savepoints of the outer one.
            db._depth += 1
            self._nested = nested = db._depth > 1
            self._name = name = f"unit_{db._depth}"
            try:
                db._conn.execute(f"SAVEPOINT {name}" if nested else "BEGIN IMMEDIATE")
            except BaseException:
                db._depth -= 1
                db._forget_reads(scope)
                raise
        except BaseException:
            db._lock.release()
            raise
        return db._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        db, name = self._db, self._name
        try:
            try:
                if exc_type is not None:
                    if self._nested:
                        db._conn.execute(f"ROLLBACK TO {name}")
                        db._conn.execute(f"RELEASE {name}")
                    else:
                        db._conn.execute("ROLLBACK")
                else:
                    db._conn.execute(f"RELEASE {name}" if self._nested else "COMMIT")
            finally:
                db._depth -= 1
                db._forget_reads(self._scope)
        finally:
            db._lock.release()
