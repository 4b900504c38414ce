"""POST /v1/search: the chunks the assistant would be given for a query, best first."""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from indexes import IndexNotReadyError
from server.auth import CHAT
from server.schemas import SearchRequest, SearchResult
from server.state import ServerState


@post("/v1/search", status_code=200, sync_to_thread=True, guards=CHAT)
def search(data: JSONBody[SearchRequest], server: NamedDependency[ServerState]) -> SearchResult:
    server.ready()
    retriever = server.retriever
    if retriever is None:
        raise IndexNotReadyError()
    return SearchResult(data=retriever.search(data.query, data.k))


ROUTES = [search]
