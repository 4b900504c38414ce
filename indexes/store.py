"""The index store: one sqlite file (`.hybrid/hybrid.db`) opened with sqlite-utils.

Rows are immutable once written and shared between versions:
- `documents` holds one row per document *revision* (an edit adds a row), `chunks` the
  chunks of each revision, and `chunks_fts` an FTS5 index over the chunks of the
  *published* version only (the `published_chunks` view), so BM25's statistics are those
  of the current documents, whatever their edit history.
- `index_versions` lists the versions; `version_documents` says which revisions make up
  each one; `index_state.published` points at the version searches use. Publishing or
  rolling back is one update of that pointer, plus the FTS rows of the documents that
  differ, in the same transaction.
- `embeddings` caches vectors by (embedder, hash of the embedded text).
A version being built is invisible to searches, and an unfinished one is deleted by the
next sync. The schema grows by numbered migrations.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import sqlite_utils

from hybrid import database
from hybrid.types import Chunk, Document

Status = str  # "building" until published, then "published"


def _migration_1(connection: sqlite3.Connection) -> None:
    db = sqlite_utils.Database(connection)
    db.executescript(
        """
        CREATE TABLE documents (
            num INTEGER PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL,
            content_hash TEXT NOT NULL, title TEXT NOT NULL, metadata TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE INDEX documents_id ON documents(id);
        CREATE TABLE chunks (
            num INTEGER PRIMARY KEY,
            document_num INTEGER NOT NULL REFERENCES documents(num) ON DELETE CASCADE,
            id TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL,
            headings TEXT NOT NULL, heading_path TEXT NOT NULL,
            start INTEGER NOT NULL, "end" INTEGER NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX chunks_document ON chunks(document_num);
        CREATE TABLE embeddings (
            embedder TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL,
            PRIMARY KEY (embedder, hash)) WITHOUT ROWID;
        CREATE TABLE index_versions (
            version INTEGER PRIMARY KEY, parent INTEGER, status TEXT NOT NULL,
            created_at REAL NOT NULL, published_at REAL, embedder TEXT NOT NULL,
            dimension INTEGER NOT NULL, kind TEXT NOT NULL, chunking TEXT NOT NULL,
            document_count INTEGER, chunk_count INTEGER, summary TEXT);
        CREATE TABLE version_documents (
            version INTEGER NOT NULL REFERENCES index_versions(version) ON DELETE CASCADE,
            document_num INTEGER NOT NULL REFERENCES documents(num),
            PRIMARY KEY (version, document_num)) WITHOUT ROWID;
        CREATE INDEX version_documents_document ON version_documents(document_num);
        CREATE TABLE index_state (
            id INTEGER PRIMARY KEY CHECK (id = 1), published INTEGER);
        INSERT INTO index_state (id, published) VALUES (1, NULL);
        """
    )
    # Headings are searchable too: "warranty" should find the chunks under that heading.
    db["chunks"].enable_fts(["text", "headings"], create_triggers=True, tokenize="porter")


def _migration_2(connection: sqlite3.Connection) -> None:
    """The FTS index holds the published version's chunks, not every revision's: with old
    revisions in it, BM25's document counts and lengths (and so the lexical ranking)
    depended on how often documents had been edited."""
    connection.executescript(
        """
        DROP TRIGGER IF EXISTS chunks_ai;
        DROP TRIGGER IF EXISTS chunks_ad;
        DROP TRIGGER IF EXISTS chunks_au;
        DROP TABLE chunks_fts;
        CREATE VIEW published_chunks AS
            SELECT c.num, c.text, c.headings FROM chunks c
            JOIN version_documents vd ON vd.document_num = c.document_num
            JOIN index_state s ON vd.version = s.published;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, headings, tokenize='porter', content='published_chunks', content_rowid='num');
        INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild');
        """
    )


def _migration_3(connection: sqlite3.Connection) -> None:
    """Each revision keeps its text, so the documents API can give it back. Revisions
    indexed before have none until `hybrid index sync --rebuild` re-adds them."""
    connection.execute("ALTER TABLE documents ADD COLUMN text TEXT")


@dataclass(frozen=True)
class DocumentRow:
    num: int
    id: str
    source: str
    content_hash: str
    title: str
    metadata: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class VersionRow:
    version: int
    parent: int | None
    status: Status
    created_at: float
    published_at: float | None
    embedder: str
    dimension: int
    kind: str
    chunking: dict[str, Any]
    document_count: int | None
    chunk_count: int | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class ChunkRow:
    num: int
    chunk: Chunk
    title: str
    source: str
    metadata: dict[str, Any]


class IndexStore:
    """The sqlite side of the index. Not thread-safe: open one per thread."""

    def __init__(self, path: Path) -> None:
        migrations = [_migration_1, _migration_2, _migration_3]
        self.db = sqlite_utils.Database(database.open_database(path, "index", migrations))
        self.path = path

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- versions ---------------------------------------------------------------------

    def published_version(self) -> int | None:
        return self.db.execute("SELECT published FROM index_state").fetchone()[0]

    def versions(self, status: Status | None = None) -> list[VersionRow]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.db.query(f"SELECT * FROM index_versions {where} ORDER BY version", params)
        return [_version_row(row) for row in rows]

    def publication_history(self) -> list[VersionRow]:
        """Versions that have been published, most recently published first (a rollback
        publishes again, so the current version always comes first)."""
        return sorted(
            self.versions(status="published"), key=lambda row: row.published_at or 0, reverse=True
        )

    def cached_embedding_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]

    def version(self, number: int) -> VersionRow | None:
        rows = list(self.db.query("SELECT * FROM index_versions WHERE version = ?", [number]))
        return _version_row(rows[0]) if rows else None

    def begin_version(
        self, parent: int | None, *, embedder: str, dimension: int, kind: str, chunking: dict
    ) -> int:
        with database.write_transaction(self.db.conn):
            last = self.db.execute("SELECT max(version) FROM index_versions").fetchone()[0]
            number = (last or 0) + 1
            self.db["index_versions"].insert(
                {
                    "version": number,
                    "parent": parent,
                    "status": "building",
                    "created_at": time.time(),
                    "embedder": embedder,
                    "dimension": dimension,
                    "kind": kind,
                    "chunking": json.dumps(chunking, sort_keys=True),
                }
            )
        return number

    def copy_documents(self, source: int, target: int, *, except_nums: Iterable[int]) -> None:
        """Carry the parent's unchanged documents into the version being built."""
        excluded = json.dumps(sorted(except_nums))
        with database.write_transaction(self.db.conn):
            self.db.execute(
                "INSERT INTO version_documents (version, document_num) "
                "SELECT ?, document_num FROM version_documents WHERE version = ? "
                "AND document_num NOT IN (SELECT value FROM json_each(?))",
                [target, source, excluded],
            )

    def add_revisions(
        self,
        version: int,
        revisions: Sequence[tuple[Document, str, float, list[tuple[Chunk, str]]]],
        vectors: dict[str, bytes],
        embedder: str,
    ) -> list[int]:
        """One batch in one transaction: new embeddings, then each (document, content
        hash, created_at, [(chunk, embedding hash)]) as a revision of `version`."""
        now = time.time()
        nums = []
        with database.write_transaction(self.db.conn):
            self.db["embeddings"].insert_all(
                ({"embedder": embedder, "hash": h, "vector": v} for h, v in vectors.items()),
                ignore=True,
            )
            for document, content_hash, created_at, chunks in revisions:
                num = (
                    self.db["documents"]
                    .insert(
                        {
                            "id": document.id,
                            "source": document.source,
                            "content_hash": content_hash,
                            "title": document.title,
                            "text": document.text,
                            "metadata": json.dumps(document.metadata, sort_keys=True),
                            "created_at": created_at,
                            "updated_at": now,
                        }
                    )
                    .last_pk
                )
                self.db["chunks"].insert_all(
                    {
                        "document_num": num,
                        "id": chunk.id,
                        "ordinal": ordinal,
                        "text": chunk.text,
                        "headings": " ".join(chunk.heading_path),
                        "heading_path": json.dumps(chunk.heading_path),
                        "start": chunk.start,
                        "end": chunk.end,
                        "hash": hash_,
                    }
                    for ordinal, (chunk, hash_) in enumerate(chunks)
                )
                self.db["version_documents"].insert({"version": version, "document_num": num})
                nums.append(num)
        return nums

    def finish_version(self, version: int, summary: dict[str, Any]) -> None:
        """Record the counts and sync summary of a fully built version."""
        documents, chunks = self.db.execute(
            "SELECT count(DISTINCT vd.document_num), count(c.num) FROM version_documents vd "
            "LEFT JOIN chunks c ON c.document_num = vd.document_num WHERE vd.version = ?",
            [version],
        ).fetchone()
        with database.write_transaction(self.db.conn):
            self.db["index_versions"].update(
                version,
                {
                    "document_count": documents,
                    "chunk_count": chunks,
                    "summary": json.dumps(summary, sort_keys=True),
                },
            )

    def publish(self, version: int) -> None:
        """The atomic switch: from this commit on, searches use `version`, and the FTS
        index holds exactly its chunks."""
        with database.write_transaction(self.db.conn):
            current = self.published_version() or 0
            # An external-content FTS5 row is deleted by giving back the values it indexed;
            # chunks are immutable, so the chunks table still has them.
            self.db.execute(
                "INSERT INTO chunks_fts(chunks_fts, rowid, text, headings) "
                "SELECT 'delete', num, text, headings FROM chunks WHERE document_num IN "
                f"({_DOCUMENTS_ONLY_IN})",
                [current, version],
            )
            self.db.execute(
                "INSERT INTO chunks_fts(rowid, text, headings) SELECT num, text, headings "
                f"FROM chunks WHERE document_num IN ({_DOCUMENTS_ONLY_IN})",
                [version, current],
            )
            self.db.execute(
                "UPDATE index_versions SET status = 'published', published_at = ? "
                "WHERE version = ?",
                [time.time(), version],
            )
            self.db.execute("UPDATE index_state SET published = ?", [version])

    def delete_versions(self, numbers: Iterable[int]) -> None:
        """Forget versions, then every revision (and its chunks) that no remaining version
        uses. Embeddings stay cached."""
        numbers = list(numbers)
        if not numbers:
            return
        with database.write_transaction(self.db.conn):
            self.db.execute(
                "DELETE FROM index_versions WHERE version IN (SELECT value FROM json_each(?))",
                [json.dumps(numbers)],
            )
            self.db.execute(
                "DELETE FROM documents WHERE num NOT IN "
                "(SELECT document_num FROM version_documents)"
            )

    # -- documents and chunks -----------------------------------------------------------

    def documents(self, version: int) -> dict[str, DocumentRow]:
        rows = self.db.query(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents d JOIN version_documents vd "
            "ON vd.document_num = d.num WHERE vd.version = ? ORDER BY d.id",
            [version],
        )
        return {row["id"]: _document_row(row) for row in rows}

    def document_text(self, num: int) -> str | None:
        """A revision's text (None if it was indexed before revisions kept their text)."""
        row = self.db.execute("SELECT text FROM documents WHERE num = ?", [num]).fetchone()
        return row[0] if row else None

    def chunk_hashes(
        self, version: int, document_nums: Iterable[int] | None = None
    ) -> list[tuple[int, str]]:
        """(chunk num, embedding hash) of a version's chunks, or of some of its documents."""
        sql = (
            "SELECT c.num, c.hash FROM chunks c JOIN version_documents vd "
            "ON vd.document_num = c.document_num WHERE vd.version = ?"
        )
        params: list[Any] = [version]
        if document_nums is not None:
            sql += " AND c.document_num IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(document_nums)))
        return [tuple(row) for row in self.db.execute(sql + " ORDER BY c.num", params)]

    def chunk_ids(self, version: int) -> set[str]:
        rows = self.db.execute(
            "SELECT c.id FROM chunks c JOIN version_documents vd "
            "ON vd.document_num = c.document_num WHERE vd.version = ?",
            [version],
        )
        return {row[0] for row in rows}

    def chunk_nums_of_documents(self, document_nums: Iterable[int]) -> list[int]:
        rows = self.db.execute(
            "SELECT num FROM chunks WHERE document_num IN (SELECT value FROM json_each(?))",
            [json.dumps(sorted(document_nums))],
        )
        return [row[0] for row in rows]

    def cached_vectors(self, embedder: str, hashes: Iterable[str]) -> dict[str, bytes]:
        rows = self.db.execute(
            "SELECT hash, vector FROM embeddings WHERE embedder = ? "
            "AND hash IN (SELECT value FROM json_each(?))",
            [embedder, json.dumps(sorted(set(hashes)))],
        )
        return dict(rows.fetchall())

    def chunks(self, nums: Sequence[int]) -> dict[int, ChunkRow]:
        rows = self.db.query(
            "SELECT c.*, d.id AS document_id, d.title, d.source, d.metadata FROM chunks c "
            "JOIN documents d ON d.num = c.document_num "
            "WHERE c.num IN (SELECT value FROM json_each(?))",
            [json.dumps(list(nums))],
        )
        return {row["num"]: _chunk_row(row) for row in rows}

    def lexical_search(
        self, version: int, match: str, limit: int, filters: dict[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk num, BM25 score, higher is better) for an FTS5 MATCH expression."""
        where, params = _metadata_filter(filters)
        sql = (
            "SELECT c.num, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks c ON c.num = chunks_fts.rowid "
            "JOIN version_documents vd ON vd.document_num = c.document_num AND vd.version = ? "
            f"JOIN documents d ON d.num = c.document_num WHERE chunks_fts MATCH ? {where} "
            "ORDER BY bm25(chunks_fts), c.id LIMIT ?"
        )
        rows = self.db.execute(sql, [version, match, *params, limit])
        return [(num, float(score)) for num, score in rows]

    def matching_chunk_nums(self, version: int, filters: dict[str, Any]) -> set[int]:
        """The chunks of a version whose document metadata matches every filter."""
        where, params = _metadata_filter(filters)
        rows = self.db.execute(
            "SELECT c.num FROM chunks c JOIN version_documents vd ON vd.document_num = "
            "c.document_num AND vd.version = ? JOIN documents d ON d.num = c.document_num "
            f"WHERE 1 {where}",
            [version, *params],
        )
        return {row[0] for row in rows}

    def fts_problems(self) -> list[str]:
        """What FTS5's own integrity check and the row sets say is wrong, if anything."""
        problems = []
        try:
            self.db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"the FTS index does not match the published chunks ({exc})")
        extra, missing = self.db.execute(
            "SELECT (SELECT count(*) FROM (SELECT id FROM chunks_fts_docsize "
            "EXCEPT SELECT num FROM published_chunks)), (SELECT count(*) FROM (SELECT num "
            "FROM published_chunks EXCEPT SELECT id FROM chunks_fts_docsize))"
        ).fetchone()
        if extra or missing:
            problems.append(
                f"the FTS index holds {extra} chunks outside the published version and "
                f"lacks {missing} of its chunks"
            )
        return problems

    def rebuild_fts(self) -> None:
        with database.write_transaction(self.db.conn):
            self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild')")


# A revision without its text, which can be large and is read one document at a time.
_DOCUMENT_COLUMNS = ", ".join(f"d.{field.name}" for field in fields(DocumentRow))

# The revisions in one version (the first parameter) and not in another (the second).
_DOCUMENTS_ONLY_IN = (
    "SELECT document_num FROM version_documents WHERE version = ? "
    "EXCEPT SELECT document_num FROM version_documents WHERE version = ?"
)


def _metadata_filter(filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for key, value in (filters or {}).items():
        clauses.append("AND json_extract(d.metadata, ?) = ?")
        params += [f'$."{key}"', value]
    return " ".join(clauses), params


def _document_row(row: dict[str, Any]) -> DocumentRow:
    return DocumentRow(**{**row, "metadata": json.loads(row["metadata"])})


def _version_row(row: dict[str, Any]) -> VersionRow:
    return VersionRow(
        **{
            **row,
            "chunking": json.loads(row["chunking"]),
            "summary": json.loads(row["summary"]) if row["summary"] else None,
        }
    )


def _chunk_row(row: dict[str, Any]) -> ChunkRow:
    chunk = Chunk(
        id=row["id"],
        document_id=row["document_id"],
        text=row["text"],
        heading_path=tuple(json.loads(row["heading_path"])),
        start=row["start"],
        end=row["end"],
    )
    return ChunkRow(row["num"], chunk, row["title"], row["source"], json.loads(row["metadata"]))
