"""hybrid core: configuration, core types, errors, extension protocols, bot folders.

Imports only the standard library and msgspec; heavy machinery lives in indexes/,
training/ and server/ and is imported only on the paths that use it.
"""

from hybrid.bot import Bot, find_bot, init_bot
from hybrid.config import Config, GenerationSettings, load_config
from hybrid.errors import BotNotFoundError, ConfigError, HybridError, ModelLoadError
from hybrid.protocols import Embedder, Generator, Retriever
from hybrid.types import AdapterRef, Chunk, Document, Generation, Hit, Message

__all__ = [
    "AdapterRef",
    "Bot",
    "BotNotFoundError",
    "Chunk",
    "Config",
    "ConfigError",
    "Document",
    "Embedder",
    "Generation",
    "GenerationSettings",
    "Generator",
    "Hit",
    "HybridError",
    "Message",
    "ModelLoadError",
    "Retriever",
    "find_bot",
    "init_bot",
    "load_config",
]
