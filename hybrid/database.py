"""The bot's one sqlite file, shared by its parts: each part (the index, the adapter
registry, ...) grows its own tables by numbered migrations recorded per part, so the
parts evolve independently in one database."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from hybrid.errors import HybridError

T = TypeVar("T")


def open_database(
    path: Path, part: str, migrations: Sequence[Callable[[sqlite3.Connection], None]]
) -> sqlite3.Connection:
    """A connection to the bot's database with `part`'s migrations applied, in WAL mode
    (readers never wait for the writer), waiting up to a minute for another process's
    write lock instead of failing. A file that is not a usable database is a HybridError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
    try:
        _patiently(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        _patiently(lambda: migrate(connection, part, migrations))
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise HybridError(
            f"{path} is not a usable hybrid database: {exc}",
            hint="move it away; `hybrid index sync` rebuilds the index, adapters stay on disk",
        ) from exc
    return connection


def migrate(
    connection: sqlite3.Connection,
    part: str,
    migrations: Sequence[Callable[[sqlite3.Connection], None]],
) -> None:
    """Apply `part`'s migrations not applied yet, in order, each with its record in one
    transaction."""
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "part TEXT NOT NULL, number INTEGER NOT NULL, applied_at REAL NOT NULL, "
        "PRIMARY KEY (part, number))"
    )
    _adopt_index_only_table(connection)
    rows = connection.execute("SELECT number FROM schema_migrations WHERE part = ?", [part])
    done = {number for (number,) in rows}
    for number, migration in enumerate(migrations, start=1):
        if number in done:
            continue
        # One write transaction for the check and the change, so two connections
        # opening the same new database cannot both apply a migration.
        with write_transaction(connection):
            applied = connection.execute(
                "SELECT 1 FROM schema_migrations WHERE part = ? AND number = ?", [part, number]
            ).fetchone()
            if not applied:
                migration(connection)
                connection.execute(
                    "INSERT INTO schema_migrations (part, number, applied_at) VALUES (?, ?, ?)",
                    [part, number, time.time()],
                )


@contextlib.contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error): the write lock is taken at the
    start, so a read-then-write inside cannot interleave with another connection's."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _patiently(action: Callable[[], T], seconds: float = 60.0) -> T:
    """`action`, tried again while the database is locked. Switching a new file to WAL
    and a write after another connection's schema change fail at once with "database is
    locked" instead of waiting like other statements do (seen when a server's threads
    first open a new bot's database together)."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.5)


def _adopt_index_only_table(connection: sqlite3.Connection) -> None:
    """Databases made before the adapter registry kept the index's migrations in a table
    of their own, `migrations`; they become the index part's rows."""
    legacy = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if legacy:
        with connection:
            connection.execute(
                "INSERT OR IGNORE INTO schema_migrations (part, number, applied_at) "
                "SELECT 'index', number, applied_at FROM migrations"
            )
            connection.execute("DROP TABLE migrations")
