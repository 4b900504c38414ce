"""The documents and the index, changed while serving: GET/PUT/DELETE
/v1/documents[/{id}], POST /v1/index/sync and GET /v1/index. A change publishes a new
index version that the next search reads; no restart, and no search ever sees half of
it."""

from __future__ import annotations

import msgspec
from litestar import delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from indexes import SyncSummary, sync_index
from indexes.store import DocumentRow
from server import documents
from server.auth import ADMIN, CHAT
from server.routes.params import IdPath
from server.schemas import (
    DocumentBody,
    DocumentChange,
    DocumentDetail,
    DocumentInfo,
    DocumentList,
    IndexInfo,
    SyncInfo,
)
from server.state import ServerState


@get("/v1/documents", sync_to_thread=True, guards=CHAT)
def list_documents(server: NamedDependency[ServerState]) -> DocumentList:
    return DocumentList(data=[_info(row) for row in documents.list_documents(server.bot)])


# Not in a worker thread: a quick sqlite read (and with sync_to_thread=True, Litestar
# 2.25 returned this path-parameter GET's coroutine unawaited).
@get("/v1/documents/{document_id:path}", sync_to_thread=False, guards=CHAT)
def get_document(document_id: IdPath, server: NamedDependency[ServerState]) -> DocumentDetail:
    row = documents.get_document(server.bot, document_id.lstrip("/"))
    text = documents.get_document_text(server.bot, row)
    return DocumentDetail(**msgspec.structs.asdict(_info(row)), text=text)


@put("/v1/documents/{document_id:path}", sync_to_thread=True, guards=ADMIN)
def put_document(
    document_id: IdPath, data: JSONBody[DocumentBody], server: NamedDependency[ServerState]
) -> DocumentChange:
    change = documents.put_document(
        server.bot, server.embedder(), document_id.lstrip("/"), data.title, data.text
    )
    server.index_changed()
    assert change.document is not None
    return DocumentChange(document=_info(change.document), sync=_sync_info(change.sync))


@delete("/v1/documents/{document_id:path}", status_code=200, sync_to_thread=True, guards=ADMIN)
def delete_document(document_id: IdPath, server: NamedDependency[ServerState]) -> DocumentChange:
    change = documents.delete_document(server.bot, server.embedder(), document_id.lstrip("/"))
    server.index_changed()
    return DocumentChange(document=None, deleted=True, sync=_sync_info(change.sync))


@post("/v1/index/sync", status_code=200, sync_to_thread=True, guards=ADMIN)
def sync(server: NamedDependency[ServerState]) -> SyncInfo:
    summary = sync_index(server.bot, server.embedder())
    server.index_changed()
    return _sync_info(summary)


@get("/v1/index", sync_to_thread=True, guards=CHAT)
def index_info(server: NamedDependency[ServerState]) -> IndexInfo:
    rows = documents.list_documents(server.bot)
    version = server.retriever.version() if server.retriever else None
    return IndexInfo(version=version, documents=len(rows))


def _info(row: DocumentRow) -> DocumentInfo:
    return DocumentInfo(
        id=row.id,
        title=row.title,
        source=row.source,
        metadata=row.metadata,
        updated_at=int(row.updated_at),
    )


def _sync_info(summary: SyncSummary) -> SyncInfo:
    return SyncInfo(**{**summary.to_dict(), "object": "index.sync"})


ROUTES = [list_documents, get_document, put_document, delete_document, sync, index_info]
