"""A generated document corpus for the index benchmarks: policy-like markdown files with
headings, numbers and varied wording, the same for a given size and seed."""

from __future__ import annotations

import random
from pathlib import Path

_TOPICS = ["returns", "shipping", "warranty", "billing", "repairs", "rentals", "pickup",
           "loyalty", "gift cards", "exchanges", "accounts", "privacy"]  # fmt: skip
_ITEMS = ["tents", "boots", "jackets", "stoves", "kayaks", "bikes", "backpacks", "sleeping bags",
          "headlamps", "skis", "climbing ropes", "water filters"]  # fmt: skip
_VERBS = ["returned", "exchanged", "repaired", "shipped", "refunded", "inspected", "replaced"]


def write_corpus(folder: Path, documents: int, sections: int = 3, seed: int = 0) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(documents):
        topic, item = rng.choice(_TOPICS), rng.choice(_ITEMS)
        lines = [f"# {topic.title()} policy for {item} ({number})", ""]
        for section in range(sections):
            lines += [f"## {rng.choice(_VERBS).title()} {item}, part {section + 1}", ""]
            for _ in range(rng.randint(3, 6)):
                lines.append(
                    f"{item.capitalize()} bought in region {rng.randint(1, 40)} can be "
                    f"{rng.choice(_VERBS)} within {rng.randint(2, 120)} days for a fee of "
                    f"${rng.randint(0, 90)}.{rng.randint(10, 99)}, unless the {topic} team "
                    f"approves case {rng.randint(1000, 9999)}."
                )
            lines.append("")
        (folder / f"doc-{number:06d}.md").write_text("\n".join(lines))


def edit_one(folder: Path) -> None:
    """Change one sentence of one document, as a daily policy edit does."""
    path = folder / "doc-000007.md"
    text = path.read_text()
    path.write_text(text.replace("days", "business days", 1))
