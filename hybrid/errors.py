"""The one error family. Anything hybrid raises on purpose is a HybridError whose message
is written for the person running the bot; the CLI prints it without a traceback and the
server turns it into an OpenAI-style error body."""

from __future__ import annotations

from pathlib import Path


class HybridError(Exception):
    """Base of every deliberate hybrid error. `code` is stable and machine-readable;
    `status` is the HTTP status the server answers it with; `param` names the request
    field at fault, when one is."""

    code = "hybrid_error"
    status = 400

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(HybridError):
    """A hybrid.toml that cannot be read or holds a wrong value."""

    code = "invalid_config"
    status = 500

    def __init__(
        self,
        file: Path,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"{file}:{line}" if line else str(file)
        super().__init__(f"{where}: {message}", hint=hint)
        self.file = file
        self.key = key
        self.line = line


class BotNotFoundError(HybridError):
    """No bot folder (a folder holding hybrid.toml) where one was looked for."""

    code = "bot_not_found"
    status = 500


class ModelLoadError(HybridError):
    """A base model or embedder that cannot be found or loaded."""

    code = "model_load_failed"
    status = 500
