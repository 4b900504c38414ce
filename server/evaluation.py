"""`hybrid eval`: the assistant answers a golden set in several variants (base model or
adapter, with or without retrieval), and each variant is scored on format adherence,
ROUGE-L against the references, and whether the needed document was cited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.bot import Bot
from hybrid.errors import InvalidInputError
from hybrid.types import AdapterRef
from server.assistant import Assistant
from server.compose import open_assistant
from training.evaluation import format_problems, rouge_l

VARIANTS = ("base", "base+rag", "adapter", "adapter+rag")


@dataclass(frozen=True)
class GoldenCase:
    id: str
    question: str
    reference: str
    doc_id: str | None


@dataclass
class VariantScore:
    variant: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def _mean(self, key: str) -> float:
        values = [answer[key] for answer in self.answers if answer[key] is not None]
        return sum(values) / len(values) if values else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "questions": len(self.answers),
            "format_adherence": round(self._mean("follows_format"), 3),
            "rouge_l": round(self._mean("rouge_l"), 3),
            "cited_the_document": round(self._mean("cited_document"), 3),
            "seconds_per_answer": round(self.seconds / max(1, len(self.answers)), 2),
        }


def read_golden(path: Path) -> list[GoldenCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            cases.append(
                GoldenCase(
                    id=str(record.get("id", number)),
                    question=record["question"],
                    reference=record["reference"],
                    doc_id=record.get("doc_id"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f'{path}:{number}: expected {{"question", "reference"}} '
                f'(optional "id", "doc_id"): {exc}'
            ) from exc
    if not cases:
        raise InvalidInputError(f"{path} holds no questions")
    return cases


def evaluate(
    bot: Bot,
    cases: list[GoldenCase],
    variants: list[str],
    adapter: AdapterRef | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> list[VariantScore]:
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise InvalidInputError(
            f"unknown variant(s) {', '.join(sorted(unknown))}; known: {VARIANTS}"
        )
    if adapter is None and any(v.startswith("adapter") for v in variants):
        raise InvalidInputError("the adapter variants need --adapter NAME[@VERSION]")
    with_retrieval = open_assistant(bot, retrieval=any(v.endswith("+rag") for v in variants))
    without = Assistant(
        with_retrieval.generator,
        system_prompt=with_retrieval.system_prompt,
        settings=with_retrieval.settings,
        budget=with_retrieval.budget,
    )
    scores = []
    with with_retrieval:  # stops the engine's worker when done
        for variant in variants:
            assistant = with_retrieval if variant.endswith("+rag") else without
            chosen = adapter if variant.startswith("adapter") else None
            score = VariantScore(variant)
            started = time.perf_counter()
            for number, case in enumerate(cases, start=1):
                answer = assistant.answer(case.question, adapter=chosen)
                cited = [hit.document_id for hit in answer.citations]
                score.answers.append(
                    {
                        "id": case.id,
                        "answer": answer.text,
                        "follows_format": not format_problems(answer.text, bot.config.evaluation),
                        "rouge_l": rouge_l(answer.text, case.reference),
                        "cited_document": (case.doc_id in cited)
                        if case.doc_id and variant.endswith("+rag")
                        else None,
                        "adapter": str(answer.adapter) if answer.adapter else None,
                    }
                )
                if progress:
                    progress(variant, number)
            score.seconds = time.perf_counter() - started
            scores.append(score)
    return scores
