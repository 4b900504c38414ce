"""Generate the sample support bot's training and golden data from support_facts.toml.

    python scripts/make_support_data.py          # rewrite data/train.jsonl, golden.jsonl
    python scripts/make_support_data.py --check  # exit 1 if the committed files are stale

Every reply follows the brand's answer format, so a style adapter trained on it has one
consistent voice to learn:

    Hi there! <the answer, at most 60 words>
    Policy: <the title of the policy it rests on>
    Happy trails! – Kestrel Support
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "hybrid" / "templates" / "support"
FACTS = Path(__file__).with_name("support_facts.toml")

GREETING = "Hi there!"
SIGN_OFF = "Happy trails! – Kestrel Support"
MAX_ANSWER_WORDS = 60
SHUFFLE_SEED = 2026


def reply(answer: str, policy_title: str) -> str:
    return f"{GREETING} {answer}\nPolicy: {policy_title}\n{SIGN_OFF}"


def policy_titles(docs: Path) -> dict[str, str]:
    """Document id (file stem) -> its title (the first-level heading)."""
    titles = {}
    for path in sorted(docs.glob("*.md")):
        heading = next(line for line in path.read_text().splitlines() if line.startswith("# "))
        titles[path.stem] = heading.removeprefix("# ").strip()
    return titles


def normalise(question: str) -> str:
    return " ".join(question.lower().split())


def build(
    facts: list[dict],
    unanswerable: list[dict],
    handovers: list[dict],
    titles: dict[str, str],
    config: dict,
) -> tuple[list, list]:
    system_prompt, handover = config["bot"]["system_prompt"], config["bot"]["handover"]
    train, golden = [], []
    for number, fact in enumerate(facts, start=1):
        where = f"{FACTS.name} fact {number}"
        if fact["doc"] not in titles:
            raise SystemExit(f"{where}: no document {fact['doc']!r} in {TEMPLATE / 'docs'}")
        if len(fact["answer"].split()) > MAX_ANSWER_WORDS:
            raise SystemExit(f"{where}: the answer is longer than {MAX_ANSWER_WORDS} words")
        answer = reply(fact["answer"], titles[fact["doc"]])
        if "golden" in fact:
            lacking = [f for f in fact.get("facts", []) if f.lower() not in answer.lower()]
            if not fact.get("facts") or lacking:
                raise SystemExit(f"{where}: `facts` must list parts of the answer ({lacking})")
            golden.append(
                {
                    "id": f"golden-{len(golden) + 1:03d}",
                    "question": fact["golden"],
                    "reference": answer,
                    "doc_id": fact["doc"],
                    "facts": fact["facts"],
                }
            )
            continue
        for question in fact["train"]:
            train.append(
                {
                    "messages": [
                        {"role": "system", "content": system_prompt},
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    for question in (q for table in handovers for q in table["train"]):
        train.append(
            {
                "messages": [
                    {"role": "system", "content": system_prompt},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": handover},
                ]
            }
        )
    for question in unanswerable:
        golden.append(
            {
                "id": f"golden-{len(golden) + 1:03d}",
                "question": question["golden"],
                "reference": handover,
                "answerable": False,
            }
        )
    random.Random(SHUFFLE_SEED).shuffle(train)
    trained = {normalise(row["messages"][1]["content"]) for row in train}
    leaked = [row["question"] for row in golden if normalise(row["question"]) in trained]
    if leaked:
        raise SystemExit(f"golden questions also in the training data: {leaked}")
    return train, golden


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    table = tomllib.loads(FACTS.read_text())
    config = tomllib.loads((TEMPLATE / "hybrid.toml").read_text())
    train, golden = build(
        table["fact"],
        table.get("unanswerable", []),
        table.get("handover", []),
        policy_titles(TEMPLATE / "docs"),
        config,
    )
    outputs = {
        TEMPLATE / "data" / "train.jsonl": jsonl(train),
        TEMPLATE / "data" / "golden.jsonl": jsonl(golden),
    }
    stale = [
        path for path, text in outputs.items() if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(
                f"stale: {path.relative_to(ROOT)} (run python {Path(__file__).relative_to(ROOT)})"
            )
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"{len(train)} training conversations, {len(golden)} golden questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
