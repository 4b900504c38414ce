"""The one error family. Anything hybrid raises on purpose is a HybridError whose message
is written for the person running the bot; the CLI prints it without a traceback and the
server turns it into an OpenAI-style error body.

An error says which side is at fault through its category, and the server maps the
categories to HTTP statuses in one place (server/http_errors.py): a plain HybridError is
a fault of the bot or the server (5xx, its text kept for the log), the subclasses below
are what a caller can act on."""

from __future__ import annotations

from pathlib import Path


class HybridError(Exception):
    """Base of every deliberate hybrid error. `code` is stable and machine-readable;
    `param` names the request field (or command-line option) at fault, when one is."""

    code = "hybrid_error"

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class InvalidInputError(HybridError):
    """The caller's input is at fault: a request field, a file's line, a flag."""

    code = "invalid_request"


class NotFoundError(HybridError):
    """What the caller named does not exist."""

    code = "not_found"


class ConflictError(HybridError):
    """The request is well formed but clashes with the current state."""

    code = "conflict"


class UnavailableError(HybridError):
    """The server cannot answer now (loading, shut down, its generator unreachable); the
    same request may work later, after `retry_after` seconds when that is known."""

    code = "unavailable"

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class BusyError(HybridError):
    """Too much work queued already: retry after `retry_after` seconds."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, hint=f"retry in {retry_after} s")
        self.retry_after = retry_after


class ConfigError(HybridError):
    """A hybrid.toml that cannot be read or holds a wrong value."""

    code = "invalid_config"

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


class ModelLoadError(HybridError):
    """A base model or embedder that cannot be found or loaded."""

    code = "model_load_failed"
