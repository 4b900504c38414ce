"""POST /v1/search: the chunks the assistant would be given for a query, best first."""

from __future__ import annotations

from litestar import post

from hybrid.errors import HybridError
from server.auth import CHAT
from server.schemas import SearchRequest, SearchResult
from server.state import ServerState


class NoIndexError(HybridError):
    code = "index_not_ready"
    status = 503


@post("/v1/search", status_code=200, sync_to_thread=True, guards=CHAT)
def search(data: SearchRequest, server: ServerState) -> SearchResult:
    server.ready()
    retriever = server.retriever
    if retriever is None:
        raise NoIndexError(
            "the index is empty: nothing has been synced yet",
            hint="run `hybrid index sync` (or POST /v1/index/sync)",
        )
    return SearchResult(data=retriever.search(data.query, data.k))


ROUTES = [search]
