"""The adapter registry: `.hybrid/adapters/<name>/<version>/` folders in standard PEFT
format (adapter_config.json + adapter_model.safetensors) with a manifest, and their
statuses in sqlite.

A version is numbered by a `building` row, written completely into a temporary folder,
renamed into place, and only then marked `candidate`: a half-written adapter is never
listed or loadable, and the next publication removes what a crash left. Promotion makes
one candidate `active` (retiring the active one) in one transaction.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hybrid import database
from hybrid.errors import ConflictError, HybridError, InvalidInputError, NotFoundError
from hybrid.staging import process_alive, staged_folder
from hybrid.types import AdapterRef

Status = Literal["building", "candidate", "active", "retired"]
MANIFEST = "hybrid-adapter.json"


class AdapterNotFoundError(NotFoundError):
    code = "adapter_not_found"


class NothingToRollBackError(ConflictError):
    code = "nothing_to_roll_back"


@dataclass(frozen=True)
class AdapterRecord:
    name: str
    version: int
    status: Status
    path: Path
    created_at: float
    promoted_at: float | None
    manifest: dict[str, Any]

    @property
    def ref(self) -> AdapterRef:
        return AdapterRef(self.name, self.version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "path": str(self.path),
            "created_at": self.created_at,
            "promoted_at": self.promoted_at,
            "manifest": self.manifest,
        }


def _migration_1(connection: sqlite3.Connection) -> None:
    connection.execute(
        "CREATE TABLE adapters ("
        "name TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, "
        "created_at REAL NOT NULL, promoted_at REAL, pid INTEGER, "
        "PRIMARY KEY (name, version))"
    )


class AdapterRegistry:
    def __init__(self, database_path: Path, adapters_dir: Path) -> None:
        self.adapters_dir = adapters_dir
        self.db = database.open_database(database_path, "adapters", [_migration_1])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AdapterRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing -----------------------------------------------------------------

    def publish(self, name: str, write: Callable[[Path], dict[str, Any]]) -> AdapterRecord:
        """Number a new version of `name`, let `write(folder)` fill a temporary folder
        (returning the manifest), move it into place and list it as a candidate."""
        check_adapter_name(name)
        self._remove_abandoned(name)
        with database.write_transaction(self.db):  # two publications at once get different numbers
            row = self.db.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM adapters WHERE name = ?", [name]
            ).fetchone()
            version = int(row[0])
            self.db.execute(
                "INSERT INTO adapters (name, version, status, created_at, pid) "
                "VALUES (?, ?, 'building', ?, ?)",
                [name, version, time.time(), os.getpid()],
            )
        final = self.adapters_dir / name / str(version)
        try:
            with staged_folder(final, replace=True) as staging:
                manifest = {"name": name, "version": version, **write(staging)}
                (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            with self.db:
                self.db.execute(
                    "UPDATE adapters SET status = 'candidate', pid = NULL "
                    "WHERE name = ? AND version = ?",
                    [name, version],
                )
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            with self.db:
                self.db.execute(
                    "DELETE FROM adapters WHERE name = ? AND version = ?", [name, version]
                )
            raise
        return self.get(AdapterRef(name, version))

    def _remove_abandoned(self, name: str) -> None:
        """Rows and folders of publications whose process died (kill -9 mid-write)."""
        rows = self.db.execute(
            "SELECT version, pid FROM adapters WHERE name = ? AND status = 'building'", [name]
        ).fetchall()
        for version, pid in rows:
            if pid is not None and process_alive(pid):
                continue
            shutil.rmtree(self.adapters_dir / name / str(version), ignore_errors=True)
            with self.db:
                self.db.execute(
                    "DELETE FROM adapters WHERE name = ? AND version = ?", [name, version]
                )

    # -- reading --------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[AdapterRecord]:
        where, params = ("AND name = ?", [name]) if name else ("", [])
        rows = self.db.execute(
            "SELECT name, version, status, created_at, promoted_at FROM adapters "
            f"WHERE status != 'building' {where} ORDER BY name, version",
            params,
        ).fetchall()
        return [self._record(*row) for row in rows]

    def get(self, ref: AdapterRef) -> AdapterRecord:
        """`name@version` in any listed status, or `name`: its active version."""
        if ref.version is None:
            condition, params = "status = 'active'", [ref.name]
        else:
            condition, params = "version = ? AND status != 'building'", [ref.name, ref.version]
        row = self.db.execute(
            "SELECT name, version, status, created_at, promoted_at FROM adapters "
            f"WHERE name = ? AND {condition}",
            params,
        ).fetchone()
        if row is None:
            raise self._not_found(ref)
        return self._record(*row)

    def _not_found(self, ref: AdapterRef) -> AdapterNotFoundError:
        versions = [record.version for record in self.list(ref.name)]
        if not versions:
            known = sorted({record.name for record in self.list()})
            hint = f"known adapters: {', '.join(known)}" if known else "train one: `hybrid train`"
            return AdapterNotFoundError(f"no adapter named {ref.name!r}", hint=hint)
        if ref.version is None:
            return AdapterNotFoundError(
                f"adapter {ref.name!r} has no active version (versions: {versions})",
                hint=f"promote one: `hybrid adapters promote {ref.name}`, or name one: "
                f"{ref.name}@{versions[-1]}",
            )
        return AdapterNotFoundError(
            f"adapter {ref.name!r} has no version {ref.version} (versions: {versions})"
        )

    def _record(
        self, name: str, version: int, status: Status, created: float, promoted: float | None
    ) -> AdapterRecord:
        path = self.adapters_dir / name / str(version)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise HybridError(
                f"adapter {name}@{version} is listed but its folder {path} is unreadable: {exc}"
            ) from exc
        return AdapterRecord(name, version, status, path, created, promoted, manifest)

    # -- promotion ------------------------------------------------------------------

    def promote(self, name: str, version: int | None = None) -> AdapterRecord:
        """Make `version` (default: the newest candidate) the active one."""
        if version is None:
            versions = self.list(name)
            if not versions:
                raise self._not_found(AdapterRef(name))
            candidates = [r for r in versions if r.status == "candidate"]
            if not candidates:
                raise ConflictError(f"adapter {name!r} has no candidate version to promote")
            version = candidates[-1].version
        record = self.get(AdapterRef(name, version))
        if record.status == "active":
            raise ConflictError(f"{name}@{version} is already active")
        with database.write_transaction(self.db):
            self.db.execute(
                "UPDATE adapters SET status = 'retired' WHERE name = ? AND status = 'active'",
                [name],
            )
            self.db.execute(
                "UPDATE adapters SET status = 'active', promoted_at = ? "
                "WHERE name = ? AND version = ?",
                [time.time(), name, version],
            )
        return self.get(AdapterRef(name, version))

    def rollback(self, name: str) -> AdapterRecord:
        """Make the previously active version active again."""
        active = self.get(AdapterRef(name))
        previous = [
            r
            for r in self.list(name)
            if r.status == "retired" and r.promoted_at is not None and r.version != active.version
        ]
        if not previous:
            raise NothingToRollBackError(
                f"adapter {name!r} has no earlier active version to roll back to",
                hint=f"`hybrid adapters list {name}` shows its versions",
            )
        earlier = max(previous, key=lambda r: r.promoted_at or 0)
        with database.write_transaction(self.db):
            self.db.execute(
                "UPDATE adapters SET status = 'candidate' WHERE name = ? AND version = ?",
                [name, active.version],
            )
            self.db.execute(
                "UPDATE adapters SET status = 'active', promoted_at = ? "
                "WHERE name = ? AND version = ?",
                [time.time(), name, earlier.version],
            )
        return self.get(AdapterRef(name, earlier.version))


def check_adapter_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise InvalidInputError(
            f"bad adapter name {name!r}",
            hint="use letters, digits, '-', '_' and '.', e.g. kestrel-style",
        )
