"""The main text of an HTML page, as markdown-like plain text.

Navigation, headers, footers, scripts and forms are dropped; when the page marks its
content with <main> or <article>, only that is kept. Headings become `#` lines so the
chunker can follow the page's structure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIPPED = {
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
    "form", "svg", "iframe", "button", "select",
}  # fmt: skip
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr",
}  # fmt: skip
_BLOCKS = {
    "p", "div", "section", "br", "tr", "table", "ul", "ol", "dl", "dt", "dd", "blockquote",
    "pre", "hr", "figure", "figcaption", "details", "summary",
}  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_MAIN = {"main", "article"}


class _MainTextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.page: list[str] = []  # text of the whole body
        self.main: list[str] = []  # text inside <main>/<article>
        self._skip_depth = 0
        self._main_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in _BLOCKS:
                self._emit("\n")
            return
        if tag in _SKIPPED or self._skip_depth:
            self._skip_depth += 1
            return
        if tag == "title":
            self._in_title = True
        elif tag in _MAIN:
            self._main_depth += 1
        elif tag in _HEADINGS:
            self._emit("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self._emit("\n- ")
        elif tag in _BLOCKS:
            self._emit("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if tag == "title":
            self._in_title = False
        elif tag in _MAIN:
            self._main_depth = max(0, self._main_depth - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._emit("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title += data
            return
        self._emit(re.sub(r"\s+", " ", data))

    def _emit(self, text: str) -> None:
        self.page.append(text)
        if self._main_depth:
            self.main.append(text)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, main text) of an HTML document. The title is "" when the page has none."""
    parser = _MainTextParser()
    parser.feed(html)
    parser.close()
    body = _tidy("".join(parser.main)) or _tidy("".join(parser.page))
    return " ".join(parser.title.split()), body


def _tidy(text: str) -> str:
    """Collapse the runs of blank lines and spaces that block tags leave behind."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return "\n\n".join(paragraphs)
