"""A bot is a folder: hybrid.toml, docs/, data/ and the .hybrid/ state folder.

Commands find their bot the way git finds a repository: an explicit folder (`-C DIR`),
else the HYBRID_BOT environment variable, else the nearest hybrid.toml upwards from the
current directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from hybrid.config import CONFIG_FILE, Config, load_config
from hybrid.errors import BotNotFoundError, ConflictError, InvalidInputError

BOT_ENV = "HYBRID_BOT"
STATE_DIR = ".hybrid"
TEMPLATES = ("support",)


@dataclass(frozen=True)
class Bot:
    """An opened bot folder: where everything lives, and its validated configuration."""

    root: Path
    config: Config

    @classmethod
    def open(cls, root: Path) -> Bot:
        root = root.resolve()
        config_file = root / CONFIG_FILE
        if not config_file.is_file():
            raise BotNotFoundError(
                f"{root} is not a bot folder (no {CONFIG_FILE})",
                hint=f"create one with `hybrid init {root}`",
            )
        return cls(root, load_config(config_file))

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def docs_dir(self) -> Path:
        return self.root / self.config.bot.docs_dir

    @property
    def data_dir(self) -> Path:
        return self.root / self.config.bot.data_dir

    @cached_property
    def state_dir(self) -> Path:
        """`.hybrid/`, created on first use; never edited by hand."""
        path = self.root / STATE_DIR
        path.mkdir(exist_ok=True)
        return path

    @property
    def database(self) -> Path:
        """The bot's sqlite database: documents, chunks, index versions, adapters, logs."""
        return self.state_dir / "hybrid.db"

    @property
    def indexes_dir(self) -> Path:
        """FAISS index versions, one folder each."""
        return self.state_dir / "indexes"

    @property
    def models_dir(self) -> Path:
        """Cached conversions of base models (e.g. the embedded GGUF as safetensors)."""
        return self.state_dir / "models"

    @property
    def datasets_dir(self) -> Path:
        """Immutable training-data snapshots, one folder each (see training.snapshots)."""
        return self.state_dir / "datasets"

    @property
    def adapters_dir(self) -> Path:
        """Style adapters, one folder per name and version (see training.registry)."""
        return self.state_dir / "adapters"


def find_bot(
    explicit: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Bot:
    """Locate and open the bot. `explicit` (from `-C DIR`) behaves like `git -C`: the
    search starts there. HYBRID_BOT must name the bot folder itself."""
    if explicit is None and environ.get(BOT_ENV):
        return Bot.open(Path(environ[BOT_ENV]).expanduser())
    start = (explicit or cwd or Path.cwd()).expanduser().resolve()
    if not start.is_dir():
        raise BotNotFoundError(f"{start} is not a folder")
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return Bot.open(folder)
    raise BotNotFoundError(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        hint=f"run `hybrid init DIR`, pass `-C DIR`, or set {BOT_ENV}",
    )


def init_bot(root: Path, template: str = "support") -> Bot:
    """Create a bot folder from a template shipped with hybrid. Refuses to overwrite."""
    if template not in TEMPLATES:
        raise InvalidInputError(
            f"unknown template {template!r}", hint=f"templates: {', '.join(TEMPLATES)}"
        )
    if (root / CONFIG_FILE).exists():
        raise ConflictError(f"{root} is already a bot folder ({CONFIG_FILE} exists)")
    if root.exists() and any(root.iterdir()):
        raise ConflictError(f"{root} exists and is not empty", hint="choose a new folder")
    source = resources.files("hybrid") / "templates" / template
    staging = root.with_name(f".{root.name}.init-{os.getpid()}")
    try:
        _copy_tree(source, staging)
        (staging / ".gitignore").write_text(f"{STATE_DIR}/\n", encoding="utf-8")
        # Publish the whole folder at once: an interrupted init leaves no half bot.
        if root.exists():
            root.rmdir()
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bot.open(root)


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())
