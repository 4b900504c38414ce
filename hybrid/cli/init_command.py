from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hybrid.bot import TEMPLATES, init_bot


def init(
    folder: Annotated[
        Path, typer.Argument(help="The new bot folder (must not exist or be empty).")
    ],
    template: Annotated[
        str, typer.Option(help=f"What to start from: {', '.join(TEMPLATES)}.")
    ] = "support",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a bot folder: hybrid.toml, docs/, data/."""
    bot = init_bot(folder, template)
    docs = sum(1 for p in bot.docs_dir.rglob("*") if p.is_file())
    if as_json:
        typer.echo(json.dumps({"root": str(bot.root), "template": template, "documents": docs}))
        return
    typer.echo(f"Created {bot.root} from the {template!r} template ({docs} documents).")
    typer.echo(f"Next: index its documents with `hybrid -C {folder} index sync`,")
    typer.echo(f'then ask: hybrid -C {folder} ask "How long do I have to return an item?"')
