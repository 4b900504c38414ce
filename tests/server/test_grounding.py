"""The answer guard, character by character: figures only from the sources (whatever
their separators), a numbered list's own numbers, and never the prompt's markup."""

from __future__ import annotations

from server.grounding import AnswerGuard, grounded_figures

SOURCES = (
    "Return within **45 days**, or 60 for members. Standard shipping is $19.95; call "
    "1-800-555-0142. Gift cards go up to $1,000. Question: is 3 days enough?"
)


def written(guard: AnswerGuard, text: str) -> str:
    """As much of `text` as the guard lets an answer write, character by character."""
    out = ""
    for char in text:
        if not guard.allows(out, char):
            break
        out += char
    return out


def test_figures_from_the_sources_pass_however_they_are_separated() -> None:
    guard = AnswerGuard(grounded_figures(SOURCES))
    for text in (
        "You have 45 days, or 60.",
        "It costs $19.95, or $1,000, then 45.",
        "It costs $19.95.",
        "Call 1-800-555-0142 today.",
        "Up to $1,000 or 1000.",
        "3 days is enough.",
        "1. Pack it\n2) Ship it",
    ):
        assert written(guard, text) == text


def test_a_figure_in_no_source_stops_where_it_leaves_them() -> None:
    guard = AnswerGuard(grounded_figures(SOURCES), SOURCES)
    assert written(guard, "You have 7 days.") == "You have "
    assert written(guard, "About 10,00 of them") == "About 10", "1,000-style groups only"
    assert written(guard, "Pay at https://pay.example") == "Pay at https:/", "no made-up links"
    assert written(guard, "Mail me@x.example") == "Mail me", "nor e-mail addresses"
    assert written(guard, "It costs $19.99.") == "It costs $19.9"
    assert written(guard, "Wait 450 days") == "Wait 45"
    assert written(guard, "Pay 1995") == "Pay 19" and written(guard, "Pay 1.995") == "Pay 1."
    assert written(guard, "45,, then") == "45,"
    assert written(guard, "\n7. Seven") == "\n", "a list starts at 1"
    assert written(guard, "4 days") == "4", "4 can only go on as 45"


def test_the_prompts_markup_is_never_written_with_or_without_figures() -> None:
    for guard in (AnswerGuard(grounded_figures(SOURCES), SOURCES), AnswerGuard(None)):
        assert written(guard, 'See <source id="1">') == "See <sourc"
        assert written(guard, "</SOURCE>") == "</SOURC"
        assert written(guard, "<script src=x>") == "<scrip"
    assert written(AnswerGuard(None), "You have 7 days.") == "You have 7 days."
