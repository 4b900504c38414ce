"""API keys, stored hashed in the bot's sqlite database.

Once a bot has had a key it stays closed: revoking the last key does not reopen it (every
request then gets 401) until `hybrid keys open` says so, so a slip cannot silently
expose a server. A key is shown once, when it is created; only its SHA-256 is kept (the keys are 32
random bytes, so a fast hash is enough: there is nothing to guess), with its first
characters for telling keys apart. Scope `chat` may ask, search and rate; `admin` may
also change documents, the index, adapters, files, fine-tuning jobs and keys.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hybrid.database import open_database
from hybrid.errors import ConflictError, NotFoundError

Scope = Literal["chat", "admin"]
PREFIX = "hyb-"


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE api_keys ("
        "id INTEGER PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, "
        "key_hash TEXT NOT NULL UNIQUE, shown TEXT NOT NULL, created_at REAL NOT NULL, "
        "revoked_at REAL)"
    )


def _migration_2(db: sqlite3.Connection) -> None:
    # When the operator last opened the bot to keyless use; a key created later closes it.
    db.execute("CREATE TABLE api_keys_opened (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL)")


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    scope: Scope
    shown: str  # the key's first characters, e.g. "hyb-3fA9…"
    created_at: float
    revoked_at: float | None


class KeyNotFoundError(NotFoundError):
    code = "key_not_found"


class KeyStore:
    def __init__(self, database: Path) -> None:
        self.db = open_database(database, "keys", [_migration_1, _migration_2])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, scope: Scope, name: str = "") -> tuple[ApiKey, str]:
        """A new key: its record, and the key itself (shown this once, never stored)."""
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO api_keys (name, scope, key_hash, shown, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [name, scope, _hash(secret), secret[:8] + "…", time.time()],
            )
        return self._get(int(cursor.lastrowid)), secret

    def list(self) -> list[ApiKey]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY id").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: int) -> ApiKey:
        with self.db:
            updated = self.db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [time.time(), key_id],
            ).rowcount
        if not updated:
            raise KeyNotFoundError(
                f"no active API key with id {key_id}", hint="see `hybrid keys list`"
            )
        return self._get(key_id)

    def any_active(self) -> bool:
        row = self.db.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
        return row.fetchone() is not None

    def closed(self) -> bool:
        """Whether requests need a key: once any key was created, until `open()`."""
        row = self.db.execute(
            "SELECT 1 FROM api_keys WHERE created_at > "
            "coalesce((SELECT at FROM api_keys_opened), 0) LIMIT 1"
        )
        return row.fetchone() is not None

    def open(self) -> None:
        """Let requests without a key in again (on loopback only); refused while a key is
        active, since those requests would then bypass it."""
        if self.any_active():
            raise ConflictError(
                "the bot has active API keys", hint="revoke them first (`hybrid keys list`)"
            )
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO api_keys_opened VALUES (1, ?)", [time.time()])

    def scope_of(self, secret: str) -> Scope | None:
        """The scope of an active key, or None for an unknown or revoked one."""
        row = self.db.execute(
            "SELECT scope FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
            [_hash(secret)],
        ).fetchone()
        return row[0] if row else None

    def _get(self, key_id: int) -> ApiKey:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", [key_id]).fetchone()
        return ApiKey(*row)


_COLUMNS = "id, name, scope, shown, created_at, revoked_at"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
