"""One SQLite connection per store, in WAL mode, shared by threads under a lock.

WAL lets the CLI and other processes read while the engine writes.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ...errors import TransientError


@contextmanager
def _busy_is_transient() -> Iterator[None]:
    """A locked or busy database is worth a retry: TransientError is what the ASL retries."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise TransientError(f"the ledger was busy: {exc}") from exc
        raise


class Database:
    """A thread-safe SQLite connection with the schema applied."""

    def __init__(self, path: str, schema: str, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                                         isolation_level=None, timeout=10)
        else:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(schema)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()

    def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add columns a newer SageBuild expects to a ledger an older one created."""
        with self._lock:
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _busy_is_transient():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, _busy_is_transient():
            return self._conn.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock, _busy_is_transient():
            self._conn.execute(sql, args)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
