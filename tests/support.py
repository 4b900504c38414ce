"""Small builders shared by several test modules (importable: pytest puts tests/ on the path)."""

from __future__ import annotations

from hybrid import Hit


def hit(doc: str, text: str, score: float = 1.0) -> Hit:
    """A retrieved chunk of document `doc`, as a retriever would return it."""
    return Hit(
        chunk_id=f"{doc}#0",
        document_id=doc,
        title=doc.title(),
        source=f"{doc}.md",
        text=text,
        score=score,
    )
