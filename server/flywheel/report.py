"""The gate's part of the HTML report: the verdict, each rule, and the questions the
candidate lost (regressions first), beside the active version's answers."""

from __future__ import annotations

from html import escape

from server.flywheel.comparison import Comparison
from server.flywheel.gate import GateReport


def gate_section(gate: GateReport, comparison: Comparison) -> str:
    verdict = "passed: promote" if gate.passed else "failed: stays a candidate"
    rules = "".join(
        f'<tr><th>{escape(rule.name)}</th><td class="{"good" if rule.passed else "bad"}">'
        f"{'pass' if rule.passed else 'FAIL'}</td><td>{escape(rule.detail)}</td></tr>"
        for rule in gate.rules
    )
    lost = sorted(
        (q for q in comparison.questions if q["outcome"] == "loss"),
        key=lambda q: not (q["active_right"] and not q["candidate_right"]),
    )
    rows = "".join(
        f"<tr><td>{escape(q['question'])}</td><td><pre>{escape(q['candidate_answer'])}</pre></td>"
        f"<td><pre>{escape(q['active_answer'])}</pre></td><td>{escape(q['decided_by'])}</td></tr>"
        for q in lost
    )
    return (
        f"<h2>Gate {escape(verdict)}</h2><table>{rules}</table>"
        f"<h2>Questions the candidate lost ({len(lost)})</h2><table><tr><th>question</th>"
        f"<th>candidate</th><th>active</th><th>decided by</th></tr>{rows}</table>"
    )
