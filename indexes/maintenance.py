"""`hybrid index status | versions | rollback | check`: look at and repair the index."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hybrid.bot import Bot
from hybrid.errors import ConflictError, HybridError, NotFoundError
from indexes.store import IndexStore, VersionRow
from indexes.vector_index import VectorIndex

REPAIR_HINT = (
    "run `hybrid index sync --rebuild`: it rebuilds the FTS and vector indexes from the "
    "stored chunks and cached embeddings, without re-embedding"
)


@dataclass
class CheckReport:
    version: int | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repair: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def index_status(bot: Bot) -> dict[str, Any]:
    """The published version and what it holds, plus anything unfinished."""
    with IndexStore(bot.database) as store:
        version = store.published_version()
        row = store.version(version) if version else None
        cached = store.cached_embedding_count()
        building = [v.version for v in store.versions(status="building")]
    return {
        "published": version,
        "documents": row.document_count if row else 0,
        "chunks": row.chunk_count if row else 0,
        "embedder": row.embedder if row else None,
        "configured_embedder": bot.config.models.embedder,
        "kind": row.kind if row else None,
        "published_at": row.published_at if row else None,
        "cached_embeddings": cached,
        "unfinished": building,
        # Files the sync that built the published version skipped, with the reason.
        "problems": (row.summary or {}).get("problems", []) if row else [],
    }


def published_chunk_ids(bot: Bot) -> set[str]:
    """The ids of the chunks searches read now (none before the first sync): a chunk's
    id changes with its text, so an id missing here is a fact that has changed."""
    with IndexStore(bot.database) as store:
        version = store.published_version()
        return store.chunk_ids(version) if version is not None else set()


def index_versions(bot: Bot) -> list[dict[str, Any]]:
    with IndexStore(bot.database) as store:
        current = store.published_version()
        rows = store.versions()
    return [{**_version_dict(row), "current": row.version == current} for row in rows]


def index_changes(bot: Bot, older: int, newer: int) -> dict[str, list[str]]:
    """The document ids added, changed (another revision) and removed from version
    `older` to version `newer`."""
    with IndexStore(bot.database) as store:
        for version in (older, newer):
            if store.version(version) is None:
                raise NotFoundError(f"index version {version} is not kept", param="version")
        before, after = store.documents(older), store.documents(newer)
    both = before.keys() & after.keys()
    return {
        "added": sorted(after.keys() - before.keys()),
        "changed": sorted(i for i in both if after[i].content_hash != before[i].content_hash),
        "removed": sorted(before.keys() - after.keys()),
    }


def rollback_index(bot: Bot, version: int | None = None) -> int:
    """Publish an earlier version again: `version`, or the one published before the
    current one. Returns the version now published."""
    with IndexStore(bot.database) as store:
        current = store.published_version()
        published = [row for row in store.publication_history() if row.version != current]
        kept = {row.version for row in published}
        if version is None:
            if not published:
                raise ConflictError("there is no earlier index version to roll back to")
            version = published[0].version
        elif version == current:
            raise ConflictError(f"index version {version} is already the published one")
        elif version not in kept:
            raise NotFoundError(
                f"index version {version} is not kept",
                hint=f"kept versions: {', '.join(map(str, sorted(kept))) or 'none'}",
            )
        folder = bot.indexes_dir / str(version)
        VectorIndex.load(folder)  # refuse to publish a version whose files are damaged
        store.publish(version)
    return version


def check_index(bot: Bot) -> CheckReport:
    """Prove that the store, the FTS index and the published FAISS version agree."""
    with IndexStore(bot.database) as store:
        version = store.published_version()
        report = CheckReport(version)
        unfinished = [row.version for row in store.versions(status="building")]
        if unfinished:
            report.notes.append(
                f"unfinished version(s) {', '.join(map(str, unfinished))} from an interrupted "
                "sync; the next sync removes them"
            )
        report.problems += store.fts_problems()
        if version is None:
            report.notes.append("nothing is indexed yet: run `hybrid index sync`")
            return _with_repair(report)
        row = store.version(version)
        stored = {num for num, _ in store.chunk_hashes(version)}
        try:
            index = VectorIndex.load(bot.indexes_dir / str(version))
        except HybridError as exc:
            report.problems.append(exc.message)
            return _with_repair(report)
        report.problems += _compare(version, row, stored, index)
    return _with_repair(report)


def _compare(
    version: int, row: VersionRow | None, stored: set[int], index: VectorIndex
) -> list[str]:
    problems = []
    ids = index.ids()
    if index.config.version != version:
        problems.append(f"folder {version} holds index version {index.config.version}")
    if ids != stored:
        missing, extra = len(stored - ids), len(ids - stored)
        problems.append(
            f"FAISS version {version} and the store disagree: {missing} stored chunk(s) "
            f"missing from FAISS, {extra} FAISS id(s) not in the store"
        )
    counts = {
        "store": len(stored),
        "FAISS": int(index.index.ntotal),
        "FAISS config": index.config.chunk_count,
        "version record": row.chunk_count if row else None,
    }
    if len(set(counts.values())) != 1:
        problems.append(
            "chunk counts differ: " + ", ".join(f"{name} {n}" for name, n in counts.items())
        )
    return problems


def _with_repair(report: CheckReport) -> CheckReport:
    if report.problems:
        report.repair = REPAIR_HINT
    return report


def _version_dict(row: VersionRow) -> dict[str, Any]:
    data = asdict(row)
    summary = data.pop("summary") or {}
    data["changes"] = {
        name: len(summary.get(name, []))
        for name in ("added", "updated", "deleted")
        if name in summary
    }
    return data
