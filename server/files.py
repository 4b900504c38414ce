"""Uploaded training files (OpenAI's Files API, purpose "fine-tune"): checked with the
training-data lint rules on the way in (a file with errors is refused, naming its lines),
then kept under `.hybrid/files/` with a row in sqlite. Plain Python, no web imports."""

from __future__ import annotations

import os
import secrets
import sqlite3
import tempfile
import time
from dataclasses import astuple, dataclass, replace
from pathlib import Path

from hybrid.database import open_database
from hybrid.errors import InvalidInputError, NotFoundError
from training import lint_data

PURPOSES = ("fine-tune",)
SHOWN_PROBLEMS = 5


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE files (id TEXT PRIMARY KEY, filename TEXT NOT NULL, "
        "purpose TEXT NOT NULL, bytes INTEGER NOT NULL, created_at REAL NOT NULL, "
        "examples INTEGER NOT NULL, warnings INTEGER NOT NULL)"
    )


class FileNotFoundInStoreError(NotFoundError):
    code = "file_not_found"


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: float
    examples: int
    warnings: int


class FileStore:
    def __init__(self, database: Path, folder: Path) -> None:
        self.db = open_database(database, "files", [_migration_1])
        self.folder = folder

    def close(self) -> None:
        self.db.close()

    def add(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        if purpose not in PURPOSES:
            raise InvalidInputError(
                f"purpose {purpose!r} is not supported", hint="use 'fine-tune'", param="purpose"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        file_id = f"file-{secrets.token_hex(12)}"
        # Checked under its own name, so problems read "train.jsonl:3: ...".
        with tempfile.TemporaryDirectory(dir=self.folder) as scratch:
            staged = Path(scratch) / Path(filename).name
            staged.write_bytes(content)
            report = lint_data(staged)
            if not report.ok:
                # Named as the client named it, not by the scratch path on this server.
                shown = "; ".join(
                    str(replace(p, file=filename)) for p in report.errors[:SHOWN_PROBLEMS]
                )
                raise InvalidInputError(
                    f"{filename} has {len(report.errors)} error(s): {shown}",
                    hint="fix them (see `hybrid data lint`) and upload it again",
                    param="file",
                )
            os.replace(staged, self.path(file_id))
        stored = StoredFile(
            file_id,
            filename,
            purpose,
            len(content),
            time.time(),
            len(report.train.examples),
            len(report.warnings),
        )
        with self.db:
            self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(stored))
        return stored

    def list(self) -> list[StoredFile]:
        rows = self.db.execute("SELECT * FROM files ORDER BY created_at").fetchall()
        return [StoredFile(*row) for row in rows]

    def get(self, file_id: str) -> StoredFile:
        row = self.db.execute("SELECT * FROM files WHERE id = ?", [file_id]).fetchone()
        if row is None:
            raise FileNotFoundInStoreError(f"no file {file_id!r}", param="file_id")
        return StoredFile(*row)

    def delete(self, file_id: str) -> StoredFile:
        stored = self.get(file_id)
        with self.db:
            self.db.execute("DELETE FROM files WHERE id = ?", [file_id])
        self.path(file_id).unlink(missing_ok=True)
        return stored

    def path(self, file_id: str) -> Path:
        return self.folder / f"{file_id}.jsonl"
