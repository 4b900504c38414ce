"""Loaders: every supported format read into Documents; bad files named, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

from indexes import load_documents


def make_pdf(path: Path, lines: list[str], title: str | None = None) -> None:
    """A small but valid PDF with one page of text, written by hand (byte offsets and all)."""
    text = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    info = f"<< /Title ({title}) >>" if title else "<< >>"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    path.write_bytes(out)


def test_each_format_becomes_a_document_with_id_title_and_source(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "returns.md").write_text("# Returns\n\n45 days to return.\n")
    (tmp_path / "notes.txt").write_text("Plain text about warranty repairs.\n")
    (tmp_path / "faq.html").write_text(
        "<html><head><title>FAQ</title><script>var x;</script></head><body>"
        "<nav>Home | Shop</nav><main><h1>Questions</h1><p>Gift cards never expire.</p></main>"
        "<footer>Copyright</footer></body></html>"
    )
    make_pdf(tmp_path / "manual.pdf", ["Tent care guide.", "Dry the tent before storage."], "Tents")
    (tmp_path / "kb.jsonl").write_text(
        json.dumps({"id": "kb-1", "title": "Pickup", "text": "Pickup in 2 hours.",
                    "metadata": {"region": "us"}}) + "\n"
    )  # fmt: skip
    loaded = load_documents(tmp_path)
    assert loaded.problems == []
    by_id = {doc.id: doc for doc in loaded.documents}
    assert sorted(by_id) == ["faq", "kb-1", "manual", "notes", "policies/returns"]
    assert (by_id["policies/returns"].title, by_id["policies/returns"].source) == (
        "Returns",
        "policies/returns.md",
    )
    assert by_id["notes"].title == "Notes"
    faq = by_id["faq"]
    assert faq.title == "FAQ"
    assert faq.text == "# Questions\n\nGift cards never expire."  # no nav, script or footer
    assert by_id["manual"].title == "Tents"
    assert "Tent care guide." in by_id["manual"].text
    assert "Dry the tent before storage." in by_id["manual"].text
    assert by_id["kb-1"].metadata == {"region": "us"}
    assert by_id["kb-1"].source == "kb.jsonl"


def test_bad_files_are_named_with_the_reason_and_the_good_ones_still_load(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# Good\n\nStill here.\n")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catal")
    (tmp_path / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "empty.txt").write_text("  \n\n")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 opening hours".encode("latin-1"))
    (tmp_path / "big.txt").write_text("x" * 2_000_000)
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.md").write_text("# Secret\n")
    loaded = load_documents(tmp_path, max_bytes=1_000_000)
    assert [doc.id for doc in loaded.documents] == ["good"]
    reasons = {problem.source: problem.reason for problem in loaded.problems}
    assert set(reasons) == {"broken.pdf", "image.md", "empty.txt", "latin1.txt", "big.txt",
                            "slides.pptx"}  # fmt: skip
    assert "not a readable PDF" in reasons["broken.pdf"]
    assert "binary" in reasons["image.md"]
    assert "empty" in reasons["empty.txt"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "too large" in reasons["big.txt"] and "index.max_file_mb" in reasons["big.txt"]
    assert "unsupported file type .pptx" in reasons["slides.pptx"]


def test_bad_jsonl_lines_are_named_by_line_and_the_good_lines_load(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "title": "A", "text": "Alpha."}),
        "{not json",
        json.dumps({"id": "b", "title": "B"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "c", "title": "C", "text": "Gamma.", "metadata": "us"}),
        "",
        json.dumps({"id": "a", "title": "A again", "text": "Duplicate."}),
        json.dumps({"id": "d", "title": "D", "text": "Delta."}),
        json.dumps({"id": "../../etc", "title": "E", "text": "Escape."}),
    ]
    (tmp_path / "kb.jsonl").write_text("\n".join(lines) + "\n")
    loaded = load_documents(tmp_path)
    assert [doc.id for doc in loaded.documents] == ["a", "d"]
    problems = {p.line: p.reason for p in loaded.problems}
    assert sorted(problems) == [2, 3, 4, 5, 7, 9]
    assert "not valid JSON" in problems[2]
    assert "`text`" in problems[3]
    assert "`metadata`" in problems[5]
    assert "id 'a' is already used by kb.jsonl:1" in problems[7]
    assert "`id` '../../etc' is not a usable document id" in problems[9]
    assert str(loaded.problems[0]).startswith("kb.jsonl:2: ")


def test_loading_is_deterministic_and_can_be_limited_to_paths(tmp_path: Path) -> None:
    for name in ("b.md", "a.md", "sub/c.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n\nText of {name}.\n")
    first, second = load_documents(tmp_path), load_documents(tmp_path)
    assert first.documents == second.documents
    assert [doc.id for doc in first.documents] == ["a", "b", "sub/c"]
    only_sub = load_documents(tmp_path, paths=[tmp_path / "sub"])
    assert [doc.id for doc in only_sub.documents] == ["sub/c"]
