"""Documents and the index (/admin/documents, /admin/index): the documents with their
revision dates; view and edit one (saving syncs and publishes, as the API does); upload
files; the index versions, what changed between two of them, roll back; a sync on
demand with the files it skipped and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from hybrid.errors import InvalidInputError
from indexes import (
    SyncSummary,
    index_changes,
    index_status,
    index_versions,
    rollback_index,
    sync_index,
)
from server import documents
from server.console.rendering import FORM, FORM_BODY, UPLOAD, UPLOAD_BODY, done, page, typed
from server.routes.params import IdPath
from server.state import ServerState

VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=2**31)]


@dataclass
class Edit:
    title: str = ""
    text: str = ""


@dataclass
class Upload:
    file: UploadFile | None = None


@dataclass
class Rollback:
    version: int = 0


@get("/documents", sync_to_thread=True)
def document_list(server: NamedDependency[ServerState]) -> Template:
    return page(
        "documents.html.j2",
        "Documents",
        section="documents",
        documents=documents.list_documents(server.bot),
        status=index_status(server.bot),
    )


@get("/documents/{document_id:path}", sync_to_thread=True)
def document_page(document_id: IdPath, server: NamedDependency[ServerState]) -> Template:
    row = documents.get_document(server.bot, document_id.lstrip("/"))
    text = documents.get_document_text(server.bot, row)
    editable = row.source.lower().endswith(documents.EDITABLE_SUFFIXES)
    return page("document.html.j2", row.title, section="documents", document=row, text=text,
                editable=editable)  # fmt: skip


@post("/documents/{document_id:path}", sync_to_thread=True, opt=FORM)
def save_document(
    document_id: IdPath,
    server: NamedDependency[ServerState],
    data: Annotated[Edit, FORM_BODY],
) -> Redirect:
    document_id = document_id.lstrip("/")
    change = documents.put_document(
        server.bot, server.embedder(), document_id, typed(data.title), typed(data.text)
    )
    server.index_changed()
    return done(f"/admin/documents/{document_id}", _published(change.sync))


@post("/upload", sync_to_thread=True, opt=UPLOAD)
def upload(
    server: NamedDependency[ServerState],
    data: Annotated[Upload, UPLOAD_BODY],
) -> Redirect:
    if data.file is None or not data.file.filename:
        raise InvalidInputError("choose a file to upload", param="file")
    summary = documents.add_document_file(
        server.bot, server.embedder(), data.file.filename, data.file.file.read()
    )
    server.index_changed()
    return done("/admin/documents", f"{data.file.filename}: {_published(summary)}")


@get("/index", sync_to_thread=True)
def index_page(
    server: NamedDependency[ServerState], older: VersionQuery = None, newer: VersionQuery = None
) -> Template:
    changes = index_changes(server.bot, older, newer) if older and newer else None
    return _index(server, older=older, newer=newer, changes=changes)


@post("/index/sync", sync_to_thread=True, opt=FORM)
def sync(server: NamedDependency[ServerState]) -> Template:
    """Shown at once (not redirected): the skipped files belong to this sync."""
    summary = sync_index(server.bot, server.embedder())
    server.index_changed()
    return _index(server, synced=summary)


@post("/index/rollback", sync_to_thread=True, opt=FORM)
def rollback(
    server: NamedDependency[ServerState],
    data: Annotated[Rollback, FORM_BODY],
) -> Redirect:
    version = rollback_index(server.bot, data.version or None)
    server.index_changed()
    return done("/admin/index", f"Index version {version} is published again.")


def _index(
    server: ServerState,
    *,
    older: int | None = None,
    newer: int | None = None,
    changes: dict[str, list[str]] | None = None,
    synced: SyncSummary | None = None,
) -> Template:
    """The index page: its versions, and what two of them differ by or a sync just did."""
    return page("index.html.j2", "Index", section="index", versions=index_versions(server.bot),
                status=index_status(server.bot), older=older, newer=newer, changes=changes,
                synced=synced)  # fmt: skip


def _published(summary: SyncSummary) -> str:
    if not summary.published:
        return "nothing changed in the index."
    return f"published as index version {summary.version}."


ROUTES = [document_list, document_page, save_document, upload, index_page, sync, rollback]
