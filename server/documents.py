"""Documents changed while the bot serves: a document written through the API becomes a
Markdown file in the docs folder (the folder stays the one source of truth), and only
that file is synced, so its new chunks are published as a new index version that the
very next search reads. Plain Python, no web imports."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hybrid.bot import Bot
from hybrid.errors import ConflictError, InvalidInputError, NotFoundError
from hybrid.protocols import Embedder
from indexes import SyncSummary, sync_index
from indexes.store import DocumentRow, IndexStore

# Lower-case words, digits, - and _, in folders separated by /: also a safe file path.
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*")
EDITABLE_SUFFIXES = (".md", ".txt")


class DocumentNotFoundError(NotFoundError):
    code = "document_not_found"


class DocumentConflictError(ConflictError):
    code = "document_not_editable"


@dataclass(frozen=True)
class Change:
    document: DocumentRow | None  # None once deleted
    sync: SyncSummary


def list_documents(bot: Bot) -> list[DocumentRow]:
    """The documents of the published index version, by id."""
    with IndexStore(bot.database) as store:
        version = store.published_version()
        return list(store.documents(version).values()) if version else []


def get_document(bot: Bot, document_id: str) -> DocumentRow:
    with IndexStore(bot.database) as store:
        version = store.published_version()
        found = store.documents(version).get(document_id) if version else None
    if found is None:
        raise DocumentNotFoundError(f"no document {document_id!r} in the index", param="id")
    return found


def put_document(bot: Bot, embedder: Embedder, document_id: str, title: str, text: str) -> Change:
    """Create or replace a document, then sync just its file."""
    _check_id(document_id)
    if not text.strip():
        raise InvalidInputError("the document's text is empty", param="text")
    file = _editable_file(bot, document_id) or bot.docs_dir / f"{document_id}.md"
    body = f"# {title.strip()}\n\n{text.strip()}\n" if file.suffix == ".md" else text
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.tmp")  # dot files are never loaded
    temporary.write_text(body, encoding="utf-8")
    os.replace(temporary, file)
    summary = sync_index(bot, embedder, paths=[file])
    return Change(get_document(bot, document_id), summary)


def delete_document(bot: Bot, embedder: Embedder, document_id: str) -> Change:
    """Delete a document's file, then sync it away."""
    _check_id(document_id)
    file = _editable_file(bot, document_id)
    if file is None:
        raise DocumentNotFoundError(f"no document {document_id!r} in the index", param="id")
    file.unlink()
    return Change(None, sync_index(bot, embedder, paths=[file]))


def _editable_file(bot: Bot, document_id: str) -> Path | None:
    """The existing document's file, if it has one the API may rewrite."""
    try:
        existing = get_document(bot, document_id)
    except DocumentNotFoundError:
        return None
    file = bot.docs_dir / existing.source
    if file.suffix.lower() not in EDITABLE_SUFFIXES:
        raise DocumentConflictError(
            f"document {document_id!r} comes from {existing.source}, which the API does not "
            "rewrite",
            hint="edit that file in the docs folder, then POST /v1/index/sync",
        )
    return file


def _check_id(document_id: str) -> None:
    if not _ID.fullmatch(document_id):
        raise InvalidInputError(
            f"bad document id {document_id!r}",
            hint="use lower-case letters, digits, - and _, in folders separated by /",
            param="id",
        )
