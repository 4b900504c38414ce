"""The `hybrid` command: thin commands over the library. Each parses its flags, makes one
library call and prints; heavy packages are imported inside the commands that use them."""

from hybrid.cli.app import app, main

__all__ = ["app", "main"]
