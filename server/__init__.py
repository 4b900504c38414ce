"""server: the composition root: the assistant, the generation engine and the Litestar app.

Nothing imports server/ except the CLI, and it does so lazily.
"""

from server.assistant import Answer, Assistant
from server.compose import open_assistant
from server.engine import GenerationEngine

__all__ = ["Answer", "Assistant", "GenerationEngine", "open_assistant"]
