"""After a retrain promotes a version, the customers' ratings keep judging it: once the
new version has `retrain.watch_ratings` rated answers, their mean is compared with the
mean of the previous version's last as many ratings. Fallen by more than
`retrain.rating_tolerance`, the server rolls back by itself and records why (in the
watch table, read by /metrics; in the log; as an event of the job that promoted it).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hybrid.config import RetrainSettings
from hybrid.database import open_database, write_transaction
from hybrid.types import AdapterRef
from training import AdapterRegistry

logger = logging.getLogger(__name__)
Decision = Literal["watching", "kept", "rolled_back"]


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE promotion_watch (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "version INTEGER NOT NULL, previous INTEGER NOT NULL, previous_mean REAL, "
        "promoted_at REAL NOT NULL, job_id TEXT, status TEXT NOT NULL, "
        "decided_at REAL, reason TEXT)"
    )


@dataclass(frozen=True)
class WatchDecision:
    adapter: AdapterRef
    status: Decision
    reason: str
    job_id: str | None


class PromotionWatch:
    def __init__(self, database: Path, settings: RetrainSettings) -> None:
        self.db = open_database(database, "promotion_watch", [_migration_1])
        self.settings = settings

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PromotionWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, adapter: AdapterRef, previous: AdapterRef, job_id: str | None) -> None:
        """Watch `adapter`, just promoted over `previous` (0 ratings: nothing watched)."""
        if not self.settings.watch_ratings:
            return
        previous_mean = _mean_rating(self.db, previous, self.settings.watch_ratings, 1, last=True)
        with write_transaction(self.db):
            self.db.execute(
                "UPDATE promotion_watch SET status = 'kept', decided_at = ?, "
                "reason = 'replaced by a newer promotion' WHERE name = ? AND status = 'watching'",
                [time.time(), adapter.name],
            )
            self.db.execute(
                "INSERT INTO promotion_watch (name, version, previous, previous_mean, "
                "promoted_at, job_id, status) VALUES (?, ?, ?, ?, ?, ?, 'watching')",
                [adapter.name, adapter.version, previous.version, previous_mean, time.time(),
                 job_id],
            )  # fmt: skip

    def check(self, registry: AdapterRegistry) -> list[WatchDecision]:
        """Decide every watched version that has its ratings; roll back those that fell."""
        decisions = []
        watched = self.db.execute(
            "SELECT id, name, version, previous, previous_mean, promoted_at, job_id "
            "FROM promotion_watch WHERE status = 'watching'"
        ).fetchall()
        wanted = self.settings.watch_ratings
        for row_id, name, version, previous, previous_mean, promoted_at, job_id in watched:
            adapter = AdapterRef(name, version)
            mean = _mean_rating(self.db, adapter, wanted, wanted, last=False, since=promoted_at)
            if mean is None:
                continue  # not enough ratings yet
            tolerance = self.settings.rating_tolerance
            fell = previous_mean is not None and mean < previous_mean - tolerance
            reason = (
                f"mean rating {mean:.2f} of its first {wanted} rated answers against "
                f"{previous_mean:.2f} for {name}@{previous} (tolerance {tolerance})"
                if previous_mean is not None
                else f"mean rating {mean:.2f}; {name}@{previous} had no ratings to compare"
            )
            status: Decision = "kept"
            if fell and registry.get(AdapterRef(name)).version == version:
                registry.rollback(name)
                status = "rolled_back"
                reason = f"rolled back to {name}@{previous}: {reason}"
                logger.warning("%s: %s", adapter, reason)
            with write_transaction(self.db):
                self.db.execute(
                    "UPDATE promotion_watch SET status = ?, decided_at = ?, reason = ? "
                    "WHERE id = ?",
                    [status, time.time(), reason, row_id],
                )
            decisions.append(WatchDecision(adapter, status, reason, job_id))
        return decisions

    def rollbacks(self) -> int:
        """Automatic rollbacks so far (a counter for /metrics)."""
        row = self.db.execute("SELECT count(*) FROM promotion_watch WHERE status = 'rolled_back'")
        return int(row.fetchone()[0])


def _mean_rating(
    db: sqlite3.Connection,
    adapter: AdapterRef,
    count: int,
    minimum: int,
    *,
    last: bool,
    since: float = 0.0,
) -> float | None:
    """The mean of up to `count` ratings of answers `adapter` gave (its last ones, or
    its first since `since`); None with fewer than `minimum`. An answer's latest rating
    counts, once."""
    rows = db.execute(
        "SELECT f.rating FROM feedback f JOIN interactions i ON i.id = f.interaction_id "
        "WHERE i.adapter = ? AND f.created_at >= ? AND f.id = (SELECT max(id) FROM feedback "
        f"WHERE interaction_id = f.interaction_id) ORDER BY f.id {'DESC' if last else 'ASC'} "
        "LIMIT ?",
        [str(adapter), since, count],
    ).fetchall()
    if len(rows) < max(1, minimum):
        return None
    return sum(rating for (rating,) in rows) / len(rows)
