"""The bot's sqlite file: parts opened at the same moment on a new file (a server's
threads starting together, or `hybrid serve` beside `hybrid index sync`) all get their
tables, each migration applied once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from hybrid.database import open_database


def _table(name: str):
    def migration(db: sqlite3.Connection) -> None:
        db.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)")

    return migration


def test_connections_opening_a_new_database_together_all_succeed(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    for round_number in range(30):
        path = tmp_path / f"{round_number}.db"

        def open_part(part: str, path: Path = path) -> None:
            try:
                open_database(path, part, [_table(part)]).close()
            except BaseException as exc:  # collected: a thread's exception is lost otherwise
                failures.append(exc)

        threads = [threading.Thread(target=open_part, args=(part,)) for part in "abcd" * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with sqlite3.connect(path) as db:
            applied = db.execute("SELECT part, count(*) FROM schema_migrations GROUP BY part")
            assert dict(applied.fetchall()) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert failures == []
