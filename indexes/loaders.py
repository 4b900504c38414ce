"""Loaders: the files of a docs folder read into Documents.

Supported: .md, .txt, .html/.htm (main text only), .pdf (pypdf) and .jsonl (one document
per line: `id`, `title`, `text`, optional `metadata`). A file that cannot be read — too
large, binary, empty, not UTF-8, a corrupt PDF, a bad JSONL line — becomes a LoadProblem
naming the file (and line) with the reason; it never stops the other files loading.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.types import Document
from indexes.html_text import html_to_text

# Folder names of letters, digits, ., - and _ separated by /: never `..`, never absolute.
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)*", re.ASCII)
_MAX_ID_CHARS = 200
SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".jsonl")
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class LoadProblem:
    """A file (or one line of it) that was skipped, and why."""

    source: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{_location(self.source, self.line)}: {self.reason}"


@dataclass
class LoadedDocuments:
    documents: list[Document] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    @property
    def failed_sources(self) -> set[str]:
        """Files that did not load cleanly: what was indexed from them before is kept."""
        return {problem.source for problem in self.problems}


class _Skip(Exception):
    """Raised by a reader for a file it cannot use; becomes a LoadProblem."""


def load_documents(
    docs_dir: Path, *, paths: Iterable[Path] = (), max_bytes: int = 20 * 2**20
) -> LoadedDocuments:
    """Load every supported file under `docs_dir` (or only under `paths`, which must lie
    inside it), in a stable order so that repeated loads give identical results."""
    docs_dir = docs_dir.resolve()
    loaded = LoadedDocuments()
    seen: dict[str, str] = {}  # document id -> where it was defined first
    for file in _files(docs_dir, paths):
        source = file.relative_to(docs_dir).as_posix()
        try:
            documents = _read(file, source, max_bytes, loaded.problems)
        except _Skip as exc:
            loaded.problems.append(LoadProblem(source, str(exc)))
            continue
        for document, line in documents:
            if document.id in seen:
                reason = f"document id {document.id!r} is already used by {seen[document.id]}"
                loaded.problems.append(LoadProblem(source, reason, line))
                continue
            seen[document.id] = _location(source, line)
            loaded.documents.append(document)
    return loaded


def _location(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def _files(docs_dir: Path, paths: Iterable[Path]) -> Iterator[Path]:
    roots = [path.resolve() for path in paths] or [docs_dir.resolve()]
    for root in roots:
        if not root.exists():
            continue  # a deleted file named on the command line: the sync removes it
        if root.is_file():
            yield root
            continue
        for file in sorted(root.rglob("*")):
            relative = file.relative_to(root).parts
            if file.is_file() and not any(part.startswith(".") for part in relative):
                yield file


def _read(
    file: Path, source: str, max_bytes: int, problems: list[LoadProblem]
) -> list[tuple[Document, int | None]]:
    """The file's documents, each with its line number (JSONL) or None (whole file)."""
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise _Skip(f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUFFIXES)}")
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise _Skip(f"cannot read: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise _Skip(
            f"too large ({size / 2**20:.1f} MB; the limit is index.max_file_mb = "
            f"{max_bytes / 2**20:g})"
        )
    if suffix == ".pdf":
        return [(_pdf_document(file, source), None)]
    text = _text(file)
    if suffix == ".jsonl":
        return list(_jsonl_documents(text, source, problems))
    stem_id = source.rsplit(".", 1)[0]
    if suffix in (".html", ".htm"):
        title, body = html_to_text(text)
        return [(_document(stem_id, title, body, source), None)]
    return [(_document(stem_id, markdown_title(text), text, source), None)]


def _text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _Skip(f"cannot read: {exc.strerror or exc}") from exc
    if b"\0" in data[:_SNIFF_BYTES]:
        raise _Skip("binary content, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Skip(f"not UTF-8 text (bad byte at offset {exc.start})") from exc


def _document(
    document_id: str, title: str, text: str, source: str, metadata: dict[str, Any] | None = None
) -> Document:
    text = text.strip()
    if not text:
        raise _Skip("empty: no text to index")
    title = title.strip() or _title_from_id(document_id)
    return Document(id=document_id, title=title, text=text, source=source, metadata=metadata or {})


def markdown_title(text: str) -> str:
    """The `# ` heading that opens a Markdown text, or "" if it has none."""
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
        if line.strip():
            break
    return ""


def _title_from_id(document_id: str) -> str:
    name = document_id.rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").strip()
    return name[:1].upper() + name[1:]


def _pdf_document(file: Path, source: str) -> Document:
    from pypdf import PdfReader

    # pypdf logs its repair attempts on damaged files; our LoadProblem says it once.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(file)
        if reader.is_encrypted:
            raise _Skip("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except _Skip:
        raise
    except Exception as exc:  # pypdf raises many unrelated types for damaged files
        raise _Skip(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise _Skip("the PDF has no extractable text (a scanned image?)")
    return _document(source.rsplit(".", 1)[0], title, text, source)


def _jsonl_documents(
    text: str, source: str, problems: list[LoadProblem]
) -> Iterator[tuple[Document, int]]:
    """One document per line. A bad line is reported with its number and skipped."""
    if not text.strip():
        raise _Skip("empty: no text to index")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield _jsonl_document(line, source), number
        except _Skip as exc:
            problems.append(LoadProblem(source, str(exc), line=number))


def _jsonl_document(line: str, source: str) -> Document:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Skip(f"not valid JSON ({exc.msg}, column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise _Skip("expected a JSON object with id, title and text")
    for name in ("id", "title", "text"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise _Skip(f"field `{name}` must be a non-empty string")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _Skip("field `metadata` must be an object")
    unknown = set(record) - {"id", "title", "text", "metadata"}
    if unknown:
        raise _Skip(
            f"unknown field(s) {', '.join(sorted(unknown))}; expected id, title, text, metadata"
        )
    document_id = record["id"].strip()
    if len(document_id) > _MAX_ID_CHARS or not _DOCUMENT_ID.fullmatch(document_id):
        raise _Skip(
            f"field `id` {document_id[:_MAX_ID_CHARS]!r} is not a usable document id: use at "
            f"most {_MAX_ID_CHARS} letters, digits, '.', '-' and '_', with '/' between "
            "folder names"
        )
    return _document(document_id, record["title"], record["text"], source, metadata)
