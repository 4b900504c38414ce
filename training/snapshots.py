"""Dataset snapshots: immutable training sets under `.hybrid/datasets/<id>/`, each named
by the hash of its lines, with a manifest of where they came from. An adapter records
the snapshot it was trained on, so its data can always be read back exactly."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.errors import NotFoundError
from hybrid.staging import staged_folder

DATA = "data.jsonl"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Snapshot:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def data_file(self) -> Path:
        return self.path / DATA

    @property
    def examples(self) -> int:
        return int(self.manifest["examples"])


def write_snapshot(
    datasets_dir: Path, records: Sequence[dict[str, Any]], manifest: dict[str, Any]
) -> Snapshot:
    """Store `records` (one JSON line each) with `manifest`. The same lines give the same
    snapshot: if it exists already it is returned as it is, its first manifest kept."""
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()
    snapshot_id = hashlib.sha256(data).hexdigest()[:16]
    target = datasets_dir / snapshot_id
    if not (target / MANIFEST).is_file():
        full = {"id": snapshot_id, "created_at": time.time(), "examples": len(records), **manifest}
        try:
            with staged_folder(target, replace=target.exists()) as staging:
                (staging / DATA).write_bytes(data)
                (staging / MANIFEST).write_text(json.dumps(full, indent=2) + "\n")
        except OSError:
            if not (target / MANIFEST).is_file():  # not another writer of the same lines
                raise
    return read_snapshot(datasets_dir, snapshot_id)


def list_snapshots(datasets_dir: Path) -> list[Snapshot]:
    """Every snapshot, newest first (a folder a crash left without its manifest is none)."""
    found = []
    for path in datasets_dir.iterdir() if datasets_dir.is_dir() else []:
        try:
            found.append(read_snapshot(datasets_dir, path.name))
        except NotFoundError:
            continue
    return sorted(found, key=lambda snapshot: -snapshot.path.stat().st_mtime)


def read_snapshot(datasets_dir: Path, snapshot_id: str) -> Snapshot:
    path = datasets_dir / snapshot_id
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        raise NotFoundError(
            f"no dataset snapshot {snapshot_id!r} in {datasets_dir}",
            hint="`hybrid data export --from-logs` makes one",
        ) from None
    return Snapshot(snapshot_id, path, manifest)
