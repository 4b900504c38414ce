"""The `hybrid eval` report: one self-contained HTML file (no scripts, no network) with
a bar chart per measure across the variants, and each variant's failed answers beside
their reference and the sources they were given."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from server.evaluation import VariantScore

# (summary key, label, what a good value is); shares are drawn on 0–100%.
MEASURES = (
    ("key_facts", "Key facts stated", "higher is better"),
    ("invented_figures", "Answers with an invented figure", "lower is better"),
    ("handover_recall", "Unanswerable questions handed over", "higher is better"),
    ("answerable_handed_over", "Answerable questions handed over", "lower is better"),
    ("format_adherence", "Format adherence", "higher is better"),
    ("rouge_l", "ROUGE-L", "higher is better"),
    ("prompt_tokens", "Prompt tokens per request", "lower is cheaper"),
    ("seconds_per_answer", "Seconds per answer (batched)", "lower is faster"),
)
_BAR_WIDTH, _BAR_GAP, _HEIGHT = 56, 16, 120
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222 }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em }
figure { margin: 0 } figcaption { font-weight: 600 } small { color: #666 }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em }
td, th { border: 1px solid #ddd; padding: .4em; vertical-align: top; text-align: left }
pre { white-space: pre-wrap; margin: 0 } .bad { color: #a40000 } .good { color: #1a6b1a }
"""


def write_report(
    scores: list[VariantScore], target: Path, title: str, *, preface: str = ""
) -> Path:
    """Write the report; `preface` is HTML shown first (the gate's verdict)."""
    summaries = [score.summary() for score in scores]
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>",
        f"<style>{_STYLE}</style><h1>{escape(title)}</h1>",
        preface,
        _summary_table(summaries),
        '<div class="charts">',
        *(_chart(summaries, key, label, note) for key, label, note in MEASURES),
        "</div>",
        *(_failures(score) for score in scores),
        "</html>",
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(parts), encoding="utf-8")
    return target


def _value(summary: dict[str, Any], key: str) -> tuple[float | None, str]:
    """A measure's value on the chart's scale, and as the text beside its bar."""
    value = summary[key]
    if isinstance(value, dict):
        if value["share"] is None:
            return None, "n/a"
        return value["share"] * 100, f"{value['share']:.0%} ({value['count']}/{value['of']})"
    if value is None:
        return None, "n/a"
    return float(value), f"{value:g}"


def _summary_table(summaries: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label, _ in MEASURES)
    rows = []
    for summary in summaries:
        cells = "".join(f"<td>{escape(_value(summary, key)[1])}</td>" for key, _, _ in MEASURES)
        rows.append(f"<tr><th>{escape(summary['variant'])}</th>{cells}</tr>")
    return f"<table><tr><th>variant</th>{head}</tr>{''.join(rows)}</table>"


def _chart(summaries: list[dict[str, Any]], key: str, label: str, note: str) -> str:
    values = [_value(summary, key) for summary in summaries]
    top = (
        100.0
        if isinstance(summaries[0][key], dict)
        else max((v for v, _ in values if v is not None), default=1.0) or 1.0
    )
    width = len(values) * (_BAR_WIDTH + _BAR_GAP) + _BAR_GAP
    bars = []
    for index, ((value, text), summary) in enumerate(zip(values, summaries, strict=True)):
        x = _BAR_GAP + index * (_BAR_WIDTH + _BAR_GAP)
        height = 0 if value is None else round(_HEIGHT * value / top)
        bars.append(
            f'<rect x="{x}" y="{20 + _HEIGHT - height}" width="{_BAR_WIDTH}" '
            f'height="{height}" fill="#3b6ea5"/>'
            f'<text x="{x + _BAR_WIDTH / 2}" y="{14 + _HEIGHT - height}" font-size="10" '
            f'text-anchor="middle">{escape(text)}</text>'
            f'<text x="{x + _BAR_WIDTH / 2}" y="{_HEIGHT + 36}" font-size="10" '
            f'text-anchor="middle">{escape(summary["variant"])}</text>'
        )
    svg = (
        f'<svg width="{width}" height="{_HEIGHT + 44}" role="img" '
        f'aria-label="{escape(label)}">{"".join(bars)}</svg>'
    )
    return f"<figure><figcaption>{escape(label)} <small>{note}</small></figcaption>{svg}</figure>"


def _failures(score: VariantScore) -> str:
    failed = [answer for answer in score.answers if _why_failed(answer)]
    if not failed:
        return f"<h2>{escape(score.variant)}: no failed answers</h2>"
    rows = []
    for answer in failed:
        sources = "".join(
            f"<details><summary>[{n}] {escape(source['title'])}</summary>"
            f"<pre>{escape(source['text'])}</pre></details>"
            for n, source in enumerate(answer["sources"], start=1)
        )
        rows.append(
            f"<tr><td>{escape(answer['question'])}</td>"
            f'<td class="bad">{escape("; ".join(_why_failed(answer)))}</td>'
            f"<td><pre>{escape(answer['answer'] or answer.get('error', ''))}</pre></td>"
            f"<td><pre>{escape(answer['reference'])}</pre></td><td>{sources}</td></tr>"
        )
    return (
        f"<h2>{escape(score.variant)}: {len(failed)} failed answer(s)</h2><table>"
        "<tr><th>question</th><th>why</th><th>answer</th><th>reference</th>"
        f"<th>sources</th></tr>{''.join(rows)}</table>"
    )


def _why_failed(answer: dict[str, Any]) -> list[str]:
    reasons = []
    if answer.get("error"):
        reasons.append(f"no answer: {answer['error']}")
    if answer["missing_facts"]:
        reasons.append("missing " + ", ".join(answer["missing_facts"]))
    if answer["invented_figures"]:
        reasons.append("invented " + ", ".join(answer["invented_figures"]))
    if answer["answerable"] and answer["handed_over"]:
        reasons.append("handed over an answerable question")
    if not answer["answerable"] and not answer["handed_over"]:
        reasons.append("did not hand over")
    return reasons
