"""Every answer the assistant gives, logged to the bot's sqlite database: the request,
the sources its prompt held (chunk ids and text), the adapter version, the answer,
latency and token counts, and later the user's feedback on it. These rows are what
adapters are retrained from.

With `redact` on, e-mail addresses, phone numbers and card numbers in the question,
the conversation and the answer are replaced by placeholders before they are stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from hybrid.database import open_database
from hybrid.errors import NotFoundError
from hybrid.types import AdapterRef, Hit, Message
from training.pii import redact


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE interactions ("
        "id TEXT PRIMARY KEY, created_at REAL NOT NULL, adapter TEXT, question TEXT NOT NULL, "
        "messages TEXT NOT NULL, chunk_ids TEXT NOT NULL, answer TEXT NOT NULL, "
        "finish_reason TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, "
        "latency_ms REAL NOT NULL, error TEXT)"
    )
    db.execute(
        "CREATE TABLE feedback ("
        "id INTEGER PRIMARY KEY, interaction_id TEXT NOT NULL REFERENCES interactions(id), "
        "created_at REAL NOT NULL, rating INTEGER NOT NULL, corrected_answer TEXT, "
        "comment TEXT)"
    )


def _migration_2(db: sqlite3.Connection) -> None:
    """Figures an answer wrote that its sources do not hold (when nothing kept them out)."""
    db.execute("ALTER TABLE interactions ADD COLUMN ungrounded_figures TEXT")


def _migration_3(db: sqlite3.Connection) -> None:
    """The sources exactly as the prompt gave them (focused sentences, titles), so an
    answer can become a training example in the prompt it was served with."""
    db.execute("ALTER TABLE interactions ADD COLUMN sources TEXT")


def _migration_4(db: sqlite3.Connection) -> None:
    """For review: the index version the answer's sources came from, and when a reviewer
    excluded it from training (NULL: not excluded)."""
    db.execute("ALTER TABLE interactions ADD COLUMN index_version INTEGER")
    db.execute("ALTER TABLE interactions ADD COLUMN excluded_at REAL")


class CompletionNotFoundError(NotFoundError):
    code = "completion_not_found"


@dataclass(frozen=True)
class Interaction:
    id: str
    question: str
    messages: list[Message]  # the conversation as the client sent it
    sources: list[Hit]  # as the prompt gave them
    adapter: AdapterRef | None
    answer: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    error: str | None = None
    ungrounded_figures: tuple[str, ...] = ()
    index_version: int | None = None


@dataclass(frozen=True)
class LoggedAnswer:
    """A logged answer read back with the last rating and correction it was given.
    `problem` says why a row could not be read (its other fields are then empty)."""

    id: str
    created_at: float
    question: str
    conversation: list[Message]
    sources: list[Hit] | None  # None: logged before sources were kept
    adapter: str | None
    answer: str
    finish_reason: str | None
    error: str | None
    rating: int | None
    correction: str | None
    excluded: bool = False  # a reviewer kept it out of training
    index_version: int | None = None
    problem: str | None = None


class InteractionLog:
    """One connection shared by the server's threads (writes are short and serialised)."""

    def __init__(
        self, database: Path, *, redact_pii: bool = False, pii_allowed: Sequence[str] = ()
    ) -> None:
        migrations = [_migration_1, _migration_2, _migration_3, _migration_4]
        self.db = open_database(database, "interactions", migrations)
        self.redact_pii = redact_pii
        self.pii_allowed = tuple(pii_allowed)  # the company's own public contacts
        self._lock = threading.Lock()

    def record(self, interaction: Interaction) -> None:
        clean = self._clean
        messages = [{"role": m.role, "content": clean(m.content)} for m in interaction.messages]
        with self._lock, self.db:
            self.db.execute(
                "INSERT INTO interactions (id, created_at, adapter, question, messages, "
                "chunk_ids, answer, finish_reason, prompt_tokens, completion_tokens, "
                "latency_ms, error, ungrounded_figures, sources, index_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    interaction.id,
                    time.time(),
                    str(interaction.adapter) if interaction.adapter else None,
                    clean(interaction.question),
                    json.dumps(messages, ensure_ascii=False),
                    json.dumps([hit.chunk_id for hit in interaction.sources]),
                    clean(interaction.answer),
                    interaction.finish_reason,
                    interaction.prompt_tokens,
                    interaction.completion_tokens,
                    round(interaction.seconds * 1000, 1),
                    interaction.error,
                    json.dumps(list(interaction.ungrounded_figures)),
                    msgspec.json.encode(interaction.sources).decode(),
                    interaction.index_version,
                ],
            )

    def add_feedback(
        self,
        interaction_id: str,
        rating: int,
        corrected_answer: str | None = None,
        comment: str | None = None,
    ) -> int:
        """Raises CompletionNotFoundError unless `interaction_id` was logged (the
        feedback table's foreign key checks it)."""
        row = [
            interaction_id,
            time.time(),
            rating,
            self._clean(corrected_answer) if corrected_answer is not None else None,
            self._clean(comment) if comment is not None else None,
        ]
        try:
            with self._lock, self.db:
                cursor = self.db.execute(
                    "INSERT INTO feedback (interaction_id, created_at, rating, "
                    "corrected_answer, comment) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.IntegrityError:
            raise _not_logged(interaction_id) from None
        return int(cursor.lastrowid)

    def exclude(self, interaction_id: str) -> None:
        """Keep the answer out of every later training export (a reviewer's call)."""
        with self._lock, self.db:
            cursor = self.db.execute(
                "UPDATE interactions SET excluded_at = coalesce(excluded_at, ?) WHERE id = ?",
                [time.time(), interaction_id],
            )
        if cursor.rowcount == 0:
            raise _not_logged(interaction_id)

    def answer(self, interaction_id: str) -> LoggedAnswer:
        rows = self._read("WHERE i.id = ?", [interaction_id])
        if not rows:
            raise _not_logged(interaction_id)
        return rows[0]

    def answers(self, *, since: float | None = None) -> list[LoggedAnswer]:
        """The logged answers from `since` on (a Unix time), oldest first, each with its
        latest rating and its latest correction."""
        return self._read("WHERE i.created_at >= ? ORDER BY i.created_at, i.id", [since or 0.0])

    def _read(self, where: str, parameters: list[object]) -> list[LoggedAnswer]:
        rows = self.db.execute(
            "SELECT i.id, i.created_at, i.question, i.messages, i.sources, i.adapter, "
            "i.answer, i.finish_reason, i.error, "
            "(SELECT rating FROM feedback f WHERE f.interaction_id = i.id "
            " ORDER BY f.created_at DESC, f.id DESC LIMIT 1), "
            "(SELECT corrected_answer FROM feedback f WHERE f.interaction_id = i.id "
            " AND corrected_answer IS NOT NULL ORDER BY f.created_at DESC, f.id DESC LIMIT 1), "
            "i.excluded_at IS NOT NULL, i.index_version "
            f"FROM interactions i {where}",
            parameters,
        )
        return [_logged_answer(row) for row in rows]

    def close(self) -> None:
        self.db.close()

    def _clean(self, text: str) -> str:
        return redact(text, self.pii_allowed) if self.redact_pii else text


def _not_logged(interaction_id: str) -> CompletionNotFoundError:
    return CompletionNotFoundError(
        f"no answer with id {interaction_id!r} was logged",
        hint="use the `id` of a chat completion this server returned",
        param="completion_id",
    )


def _logged_answer(row: tuple) -> LoggedAnswer:
    (id, created_at, question, messages, sources, adapter, answer, finish, error) = row[:9]
    rating, correction, excluded, index_version = row[9], row[10], bool(row[11]), row[12]
    try:
        conversation = [Message(m["role"], m["content"]) for m in json.loads(messages)]
        hits = msgspec.json.decode(sources, type=list[Hit]) if sources else None
    except (ValueError, TypeError, KeyError, msgspec.DecodeError) as exc:
        return LoggedAnswer(
            id, created_at, "", [], None, None, "", None, None, None, None,
            problem=f"unreadable row ({type(exc).__name__}: {exc})",
        )  # fmt: skip
    return LoggedAnswer(
        id, created_at, question or "", conversation, hits, adapter, answer or "", finish,
        error, rating, correction, excluded, index_version,
    )  # fmt: skip
