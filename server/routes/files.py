"""OpenAI's Files API for training data: POST/GET /v1/files, GET/DELETE
/v1/files/{id}. An upload is linted first; a file with errors is refused (400, naming
its lines) and nothing is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import anyio
from litestar import delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter

from server.auth import ADMIN
from server.files import StoredFile
from server.pages import cursor_page
from server.request_guard import MULTIPART
from server.routes.params import Cursor, IdPath
from server.schemas import FileDeleted, FileList, FileObject
from server.state import ServerState


@dataclass
class Upload:
    file: UploadFile
    purpose: str


@post("/v1/files", status_code=200, guards=ADMIN, opt={"body_media_type": MULTIPART})
async def upload_file(
    data: Annotated[Upload, Body(media_type=RequestEncodingType.MULTI_PART)],
    server: NamedDependency[ServerState],
) -> FileObject:
    content = await data.file.read()
    name = data.file.filename or "upload.jsonl"

    def add() -> StoredFile:  # the lint takes a while on a big file: off the event loop
        return server.files().add(name, data.purpose, content)

    return _object(await anyio.to_thread.run_sync(add))


@get("/v1/files", sync_to_thread=False, guards=ADMIN)
def list_files(
    server: NamedDependency[ServerState],
    after: Cursor = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 10_000,
) -> FileList:
    """Oldest first; `after` a file id, at most `limit` of them."""
    page, has_more = cursor_page(server.files().list(), after, limit)
    data = [_object(stored) for stored in page]
    return FileList(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@get("/v1/files/{file_id:str}", sync_to_thread=False, guards=ADMIN)
def retrieve_file(file_id: IdPath, server: NamedDependency[ServerState]) -> FileObject:
    return _object(server.files().get(file_id))


@delete("/v1/files/{file_id:str}", status_code=200, sync_to_thread=False, guards=ADMIN)
def delete_file(file_id: IdPath, server: NamedDependency[ServerState]) -> FileDeleted:
    return FileDeleted(id=server.files().delete(file_id).id)


def _object(stored: StoredFile) -> FileObject:
    return FileObject(
        id=stored.id,
        bytes=stored.bytes,
        created_at=int(stored.created_at),
        filename=stored.filename,
        purpose=stored.purpose,
    )


ROUTES = [upload_file, list_files, retrieve_file, delete_file]
