"""server: the composition root (assistant, generation engine; the Litestar app follows).

Nothing imports server/ except the CLI, and it does so lazily.
"""

from server.assistant import Answer, Assistant
from server.compose import open_assistant
from server.engine import LocalGenerator

__all__ = ["Answer", "Assistant", "LocalGenerator", "open_assistant"]
