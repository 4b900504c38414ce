"""Documents changed while the bot serves: a document written through the API becomes a
Markdown file in the docs folder (the folder stays the one source of truth), and only
that file is synced, so its new chunks are published as a new index version that the
very next search reads. Plain Python, no web imports."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from hybrid.bot import Bot
from hybrid.errors import ConflictError, InvalidInputError, NotFoundError
from hybrid.protocols import Embedder
from hybrid.staging import write_file_atomically
from indexes import SyncSummary, sync_index
from indexes.loaders import SUFFIXES, markdown_title
from indexes.store import DocumentRow, IndexStore

# Control characters other than tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
# One document write (file, then sync) at a time, so a failed write restores the file
# as it was before *this* write.
_WRITES = threading.Lock()
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


def get_document_text(bot: Bot, document: DocumentRow) -> str | None:
    with IndexStore(bot.database) as store:
        return store.document_text(document.num)


def put_document(bot: Bot, embedder: Embedder, document_id: str, title: str, text: str) -> Change:
    """Create or replace a document, then sync just its file. The text is checked before
    the docs folder is touched; if the sync still refuses the file, the previous file
    comes back, so the folder and the index never disagree."""
    _check_id(document_id)
    file = _editable_file(bot, document_id) or bot.docs_dir / f"{document_id}.md"
    body = _markdown(title, text) if file.suffix == ".md" else text
    _check_text(body, max_bytes=int(bot.config.index.max_file_mb * 2**20))
    summary = _write_and_sync(bot, embedder, file, body.encode("utf-8"), param="text")
    return Change(get_document(bot, document_id), summary)


def add_document_file(bot: Bot, embedder: Embedder, filename: str, content: bytes) -> SyncSummary:
    """Put an uploaded file in the docs folder (replacing one of the same name) and sync
    it; a file the loaders refuse (a corrupt PDF, a binary) is not kept."""
    name = Path(filename.replace("\\", "/")).name  # never a path: the docs folder's top
    if not name or name.startswith("."):
        raise InvalidInputError(f"bad file name {filename!r}", param="file")
    if Path(name).suffix.lower() not in SUFFIXES:
        raise InvalidInputError(
            f"{name}: unsupported file type; supported: {', '.join(SUFFIXES)}", param="file"
        )
    limit = int(bot.config.index.max_file_mb * 2**20)
    if len(content) > limit:
        raise InvalidInputError(
            f"{name} is too large ({len(content) / 2**20:.1f} MB; the limit is "
            f"index.max_file_mb = {bot.config.index.max_file_mb:g})",
            param="file",
        )
    return _write_and_sync(bot, embedder, bot.docs_dir / name, content, param="file")


def _write_and_sync(
    bot: Bot, embedder: Embedder, file: Path, content: bytes, *, param: str
) -> SyncSummary:
    """Write `file` and sync just it; if the sync refuses it, the previous file comes
    back, so the folder and the index never disagree."""
    with _WRITES:
        previous = file.read_bytes() if file.exists() else None
        file.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(file, content)
        try:
            summary = sync_index(bot, embedder, paths=[file])
        except BaseException:
            _restore(file, previous)
            raise
        refused = [p for p in summary.problems if bot.docs_dir / p.source == file]
        if refused:
            _restore(file, previous)
            reason = refused[0].reason
            raise InvalidInputError(f"{file.name} was not stored: {reason}", param=param)
    return summary


def delete_document(bot: Bot, embedder: Embedder, document_id: str) -> Change:
    """Delete a document's file, then sync it away."""
    _check_id(document_id)
    file = _editable_file(bot, document_id)
    if file is None:
        raise DocumentNotFoundError(f"no document {document_id!r} in the index", param="id")
    with _WRITES:
        file.unlink()
        return Change(None, sync_index(bot, embedder, paths=[file]))


def _markdown(title: str, text: str) -> str:
    """The Markdown file for a title and text; a text that already opens with that title
    (a document read back and written again) keeps its one heading."""
    title, text = title.strip(), text.strip()
    if markdown_title(text) == title:
        return f"{text}\n"
    return f"# {title}\n\n{text}\n"


def _check_text(text: str, *, max_bytes: int) -> None:
    if not text.strip():
        raise InvalidInputError("the document's text is empty", param="text")
    control = _CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise InvalidInputError(
            f"the document's text has control character {control.group()!r} on line {line}; "
            "documents are plain text",
            param="text",
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"the document's text is not valid Unicode (a lone surrogate at character {exc.start})",
            param="text",
        ) from None
    if size > max_bytes:
        raise InvalidInputError(
            f"the document is too large ({size / 2**20:.1f} MB; the limit is "
            f"index.max_file_mb = {max_bytes / 2**20:g})",
            param="text",
        )


def _restore(file: Path, previous: bytes | None) -> None:
    if previous is None:
        file.unlink(missing_ok=True)
    else:
        write_file_atomically(file, previous)


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
