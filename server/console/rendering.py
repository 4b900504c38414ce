"""What every console page shares: the template set-up, the page helper (the bot's name,
the section, a notice after an action) and the form body type of its actions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.template import TemplateConfig

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
# The request guard lets a route take a body other than JSON only where it says so;
# a cross-site form is still refused by its Origin, and has no console cookie to send.
FORM = {"body_media_type": "application/x-www-form-urlencoded"}
UPLOAD = {"body_media_type": "multipart/form-data"}
# How a handler reads such a body: `data: Annotated[SomeForm, FORM_BODY]`.
FORM_BODY = Body(media_type=RequestEncodingType.URL_ENCODED)
UPLOAD_BODY = Body(media_type=RequestEncodingType.MULTI_PART)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_filters)


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["timestamp"] = _timestamp


def _timestamp(seconds: float | None) -> str:
    """A Unix time as the operator reads it: UTC, to the second."""
    if seconds is None:
        return "—"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def typed(text: str) -> str:
    """What a person typed in a form's text area: browsers send its line breaks as CRLF."""
    return text.replace("\r\n", "\n").strip()


def page(template: str, title: str, *, status_code: int = 200, **context: Any) -> Template:
    """A console page: `template` with `context`, under `title` (the browser tab)."""
    return Template(template, context={"title": title, **context}, status_code=status_code)


def done(path: str, notice: str) -> Redirect:
    """After an action: back to a page (post/redirect/get), saying what was done."""
    return Redirect(path, status_code=303, query_params={"notice": notice})
