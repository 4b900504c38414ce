"""Path and query parameters shared by the routes, bounded so that an id too long for a
file name or a database index is a 4xx naming it, never a 500."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

IdPath = Annotated[str, PathParameter(min_length=1, max_length=200)]
VersionPath = Annotated[int, PathParameter(ge=1, le=2**31)]
Cursor = Annotated[str | None, QueryParameter(min_length=1, max_length=200)]
