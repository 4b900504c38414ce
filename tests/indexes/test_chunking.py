"""Chunking follows headings, stays within budget, keeps offsets, and is deterministic."""

from __future__ import annotations

import itertools

from hybrid import Document
from indexes.chunking import chunk_document, count_tokens

POLICY = """# Returns Policy

Effective 1 March 2026.

## Return window

You can return unused items within 45 days. Summit members have 60 days.

## Refunds

Refunds take 5 to 7 business days.

### Gift returns

Gift returns are refunded as store credit.
"""


def doc(text: str, doc_id: str = "returns") -> Document:
    return Document(id=doc_id, title="Returns", text=text, source=f"{doc_id}.md")


def test_chunks_follow_headings_and_keep_exact_offsets() -> None:
    chunks = chunk_document(doc(POLICY), max_tokens=200, overlap=20)
    assert [c.heading_path for c in chunks] == [
        ("Returns Policy",),
        ("Returns Policy", "Return window"),
        ("Returns Policy", "Refunds"),
        ("Returns Policy", "Refunds", "Gift returns"),
    ]
    for chunk in chunks:
        assert POLICY[chunk.start : chunk.end] == chunk.text
    assert (
        chunks[1].text == "You can return unused items within 45 days. Summit members have 60 days."
    )


def test_long_sections_are_cut_within_the_budget_with_overlap() -> None:
    sentences = [f"Rule {n} says that item {n} ships in {n} days." for n in range(60)]
    text = "# Shipping\n\n" + " ".join(sentences)
    chunks = chunk_document(doc(text), max_tokens=60, overlap=15)
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 60 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "neighbouring chunks share some text"
        assert after.start > before.start
    covered = "".join(text[c.start : c.end] for c in chunks)
    assert all(sentence in covered for sentence in sentences), "nothing is lost"


def test_a_single_huge_sentence_is_cut_at_words() -> None:
    text = " ".join(["word"] * 1000)
    chunks = chunk_document(doc(text), max_tokens=50, overlap=10)
    assert all(count_tokens(c.text) <= 50 for c in chunks)
    assert chunks[-1].end == len(text)


def test_same_text_same_ids_and_an_edit_changes_only_its_section() -> None:
    first = chunk_document(doc(POLICY), max_tokens=200, overlap=20)
    again = chunk_document(doc(POLICY), max_tokens=200, overlap=20)
    assert first == again
    edited = POLICY.replace("5 to 7 business days", "3 business days")
    changed = chunk_document(doc(edited), max_tokens=200, overlap=20)
    assert [a.id == b.id for a, b in zip(first, changed, strict=True)] == [True, True, False, True]


def test_repeated_identical_sections_get_distinct_ids() -> None:
    text = "## A\n\nSame words.\n\n## A\n\nSame words.\n"
    chunks = chunk_document(doc(text), max_tokens=100, overlap=10)
    assert len(chunks) == 2 and chunks[0].id != chunks[1].id
