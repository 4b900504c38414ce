"""What every command shares for printing: JSON on stdout, notes and progress on stderr."""

from __future__ import annotations

import logging
import warnings
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def echo_json(payload: Any) -> None:
    """One JSON document (msgspec encodes structs, dataclasses and plain values)."""
    typer.echo(msgspec.json.encode(payload).decode())


def quiet_model_libraries() -> None:
    """Our spinners and bars are the progress display; transformers' and
    sentence-transformers' own bars would tear through them. bitsandbytes warns on import
    that an optional CPU kernel package (fetched from a hub) is missing; it is optional.
    faiss reports which of its builds it loaded, at INFO, which a server's logging shows."""
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # Deprecation notices about transformers' own internals (peft calls them) mean
    # nothing to someone training a bot.
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
